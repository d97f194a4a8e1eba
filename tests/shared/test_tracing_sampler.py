"""Which roots are traced (shared.tracing): one in ten unless OTEL_TRACES_SAMPLER says
otherwise, every one when the tests hand in their exporter; children follow the parent."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind

from shared import tracing

TRACE_IDS = range(1, 2**64, 2**64 // 20_000)  # spread over the ids the ratio compares


def _sampled_share(sampler: object) -> float:
    decisions = [sampler.should_sample(None, trace_id, "GET /goals").decision  # type: ignore[attr-defined]
                 for trace_id in TRACE_IDS]
    return sum(d is Decision.RECORD_AND_SAMPLE for d in decisions) / len(decisions)


def test_by_default_one_root_in_ten_is_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    sampler = tracing._sampler(given_exporter=False)
    assert "ParentBased" in sampler.get_description()
    assert _sampled_share(sampler) == pytest.approx(tracing.DEFAULT_RATIO, abs=0.02)


def test_a_statement_outside_any_trace_starts_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "1")
    sampler = tracing._sampler(given_exporter=False)
    assert sampler.should_sample(None, 12345, "UPDATE", SpanKind.CLIENT).decision \
        is Decision.DROP
    for kind in (SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER):
        assert sampler.should_sample(None, 12345, "GET /goals", kind).decision \
            is Decision.RECORD_AND_SAMPLE


def test_the_ratio_is_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    assert _sampled_share(tracing._sampler(given_exporter=False)) == pytest.approx(0.5, abs=0.02)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "not a number")
    assert _sampled_share(tracing._sampler(given_exporter=False)) == pytest.approx(
        tracing.DEFAULT_RATIO, abs=0.02)


def test_a_named_sampler_or_a_given_exporter_leaves_it_to_the_sdk(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
    assert tracing._sampler(given_exporter=False) is None
    monkeypatch.delenv("OTEL_TRACES_SAMPLER")
    assert tracing._sampler(given_exporter=True) is None


def test_under_an_unsampled_parent_no_span_is_made_but_its_ids_carry_on() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    assert tracing.configure("tests", exporter=exporter)
    try:
        unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
        with tracing.span("apply goals.goal.completed", parent=unsampled,
                          kind="CONSUMER") as handed_on:
            assert handed_on == unsampled
            assert tracing.current_traceparent() == unsampled  # what events raised carry
            assert tracing.log_ids() == {"trace_id": "0af7651916cd43dd8448eb211c80319c",
                                         "span_id": "b7ad6b7169203331"}
        sampled = unsampled[:-2] + "01"
        with tracing.span("apply goals.goal.completed", parent=sampled,
                          kind="CONSUMER") as own:
            assert own is not None and own != sampled and own.endswith("-01")
        for malformed in ("00-00000000000000000000000000000000-b7ad6b7169203331-00", "junk"):
            with tracing.span("apply x", parent=malformed, kind="CONSUMER") as root:
                assert root is not None and root != malformed  # a root of its own
        assert [s.name for s in exporter.get_finished_spans()] == [
            "apply goals.goal.completed", "apply x", "apply x"]
    finally:
        tracing.shutdown()


def test_spans_without_a_parent_are_roots_even_held_open_together() -> None:
    """The relay holds a batch's publish spans open until the batch is confirmed: an event
    raised outside any trace starts a trace of its own, not a child of the one before."""
    import contextlib

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    assert tracing.configure("tests", exporter=exporter)
    try:
        with contextlib.ExitStack() as batch:
            handed_on = [batch.enter_context(tracing.span(
                f"publish goals.goal.completed {i}", parent=None, kind="PRODUCER"))
                for i in range(5)]
        assert len({str(p).split("-")[1] for p in handed_on}) == 5
        assert all(s.parent is None for s in exporter.get_finished_spans())
    finally:
        tracing.shutdown()
