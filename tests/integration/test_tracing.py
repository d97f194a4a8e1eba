"""One trace from an HTTP request through the outbox and the broker to the consumer that
applies its event (shared.tracing), seen by an in-memory span exporter; and the log lines
inside carry its ids."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.auth.handlers import HANDLERS as AUTH_HANDLERS
from shared import bus, tracing
from shared.config import Settings
from shared.consumer import EventConsumer
from shared.db import Database
from shared.logs import JsonFormatter
from shared.outbox import OutboxRelay
from tests.helpers import new_user_id, wait_for


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure("tests", exporter=exporter)
    yield exporter
    tracing.shutdown()


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def test_a_goal_completion_is_one_trace_from_the_request_to_the_award(
        spans: InMemorySpanExporter, dbs: Callable[[str], Database], verifier: Any,
        make_token: Callable[..., str], request: pytest.FixtureRequest) -> None:
    from services.goals.app import create_app

    namespace = f"trace{new_user_id()[:8]}"
    # A pool of its own: connections opened after tracing is on (as in a real process).
    goals_db = Database(Settings.from_env("goals").database_url, "goals")
    request.addfinalizer(goals_db.dispose)
    app = create_app({"TESTING": True}, db=goals_db, verifier=verifier)  # instrumented
    user = new_user_id()
    headers = {"Authorization": f"Bearer {make_token(user)}"}
    client = app.test_client()
    goal = client.post("/goals", json={"title": "Trace me", "period": "DAILY"},
                       headers=headers).get_json()
    assert client.post(f"/goals/{goal['id']}/complete", headers=headers).status_code == 200

    auth = Settings.from_env("auth", namespace=namespace)
    consumer = EventConsumer(auth, dbs("auth"), AUTH_HANDLERS)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    names = bus.Names(namespace)
    try:
        wait_for(lambda: consumer.pulse.connected, timeout=15, message="auth consuming")
        relay = OutboxRelay(Settings.from_env("goals", namespace=namespace), dbs("goals"))
        try:
            relay.drain()
        finally:
            relay.publisher.reset()

        def applied() -> list[ReadableSpan]:
            return [s for s in spans.get_finished_spans()
                    if s.name == "apply goals.goal.completed" and s.attributes
                    and s.attributes.get("messaging.destination.name")]

        wait_for(applied, timeout=15, message="the completion applied by auth")
    finally:
        stop.set()
        thread.join(30)
        bus.delete_namespace(auth.amqp_url, names, ["auth"], auth.retry_delays_ms)

    finished = spans.get_finished_spans()
    http_span = next(s for s in finished if s.kind is SpanKind.SERVER
                   and s.attributes and "/complete" in str(s.attributes.get("http.target", "")
                                                           or s.attributes.get("url.path", "")))
    trace_id, request_span = hex_ids(http_span)
    in_trace = [s for s in finished if hex_ids(s)[0] == trace_id]
    publish = [s for s in in_trace if s.name == "publish goals.goal.completed"]
    apply = [s for s in in_trace if s.name == "apply goals.goal.completed"]
    assert len(publish) == 1 and len(apply) == 1, [s.name for s in in_trace]
    assert publish[0].kind is SpanKind.PRODUCER and apply[0].kind is SpanKind.CONSUMER
    # the request -> (a span of the request) -> the relay's publish -> auth's apply
    assert publish[0].parent is not None and apply[0].parent is not None
    request_side = {hex_ids(s)[1] for s in in_trace
                    if s.start_time is not None and http_span.start_time is not None
                    and http_span.end_time is not None
                    and http_span.start_time <= s.start_time <= http_span.end_time}
    assert f"{publish[0].parent.span_id:016x}" in request_side | {request_span}
    assert apply[0].parent.span_id == publish[0].context.span_id  # type: ignore[union-attr]
    assert any(s.name.startswith(("SELECT", "UPDATE", "INSERT")) or "postgresql" in
               str(s.attributes.get("db.system", "") if s.attributes else "")
               for s in in_trace), "the request's statements are in the trace"


def test_log_lines_carry_the_current_trace_and_span(spans: InMemorySpanExporter) -> None:
    record = logging.makeLogRecord({"msg": "inside", "name": "t", "levelname": "INFO"})
    with tracing.span("work", parent=None, kind="INTERNAL") as own:
        line = json.loads(JsonFormatter("tests").format(record))
    assert own is not None
    _version, trace_id, span_id, _flags = own.split("-")
    assert (line["trace_id"], line["span_id"]) == (trace_id, span_id)
    outside = json.loads(JsonFormatter("tests").format(record))
    assert "trace_id" not in outside


def test_tracing_is_off_and_costs_nothing_without_an_endpoint() -> None:
    assert not tracing.wanted({})
    assert not tracing.enabled()
    assert tracing.current_traceparent() is None
    with tracing.span("x", parent=None, kind="INTERNAL") as own:
        assert own is None
    assert tracing.log_ids() == {}
