"""Which roots are traced (shared.tracing): one in ten unless OTEL_TRACES_SAMPLER says
otherwise, every one when the tests hand in their exporter; children follow the parent."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.sampling import Decision

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
