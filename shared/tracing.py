"""OpenTelemetry traces that follow a request through the outbox and the broker.

On when the standard OpenTelemetry environment says where to send spans
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; OTLP over HTTP, the
other `OTEL_*` variables as the SDK reads them), off otherwise. Off costs nothing: no
OpenTelemetry module is imported, no span made, no header added.

On, one trace runs from the HTTP request to every consumer that applies its events:
- the web process's spans: a request span (`instrument_app`), a span per SQL statement (psycopg's
  instrumentation on the pool's connections), and requests' calls out;
- an event written in a request carries the request span's W3C trace context in its
  envelope (`traceparent`, CloudEvents' distributed tracing extension), so it is stored with
  the outbox row;
- the relay publishes each such event in a `publish <type>` span, a child of it, and hands
  its own context on in the AMQP message's `traceparent` header;
- the consumer applies each event in an `apply <type>` span, a child of the relay's (or of
  the envelope's, for a message without the header), current while its handler runs, so
  what the handler logs and the events it raises continue the same trace;
- log lines carry `trace_id` and `span_id` of the current span.

Sampling: a trace is decided at its root and every process follows the decision carried in
`traceparent` (parent-based), so a sampled trace is whole from request to consumers. Unless
`OTEL_TRACES_SAMPLER` says otherwise, one root in ten is sampled (the ratio is
`OTEL_TRACES_SAMPLER_ARG`, default 0.1), and a statement or call out made outside any trace
(a relay's claim, a loop's poll) starts none: recording and exporting every request costs
about 0.3-0.5 ms of CPU a request in OpenTelemetry's Python SDK, a third of a list request
(bench/tracing.py measures both). `OTEL_TRACES_SAMPLER=parentbased_always_on` records all.
Under an unsampled parent no span is made at all (`span` hands the parent on as it is).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

_state: dict[str, Any] = {}  # "provider", "tracer" once configured
DEFAULT_RATIO = 0.1  # of the roots sampled, when OTEL_TRACES_SAMPLER is not set


def wanted(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def enabled() -> bool:
    return "tracer" in _state


def configure(service: str, *, exporter: Any = None) -> bool:
    """Turn tracing on for this process if the environment asks for it (or an `exporter`
    is given: the tests' in-memory one). Returns whether it is on."""
    if enabled():
        return True
    if exporter is None and not wanted():
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(sampler=_sampler(given_exporter=exporter is not None),
                              resource=Resource.create({
                                  "service.name": service, "service.namespace": "growth-diary"}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _state.update(provider=provider, tracer=provider.get_tracer("growth-diary"),
                  propagator=TraceContextTextMapPropagator())
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    RequestsInstrumentor().instrument(tracer_provider=provider)
    return True


def _sampler(*, given_exporter: bool) -> Any:
    """None (the SDK reads OTEL_TRACES_SAMPLER) when the environment names one or an
    exporter is given (the tests see every span); else parent-based, DEFAULT_RATIO of roots,
    or OTEL_TRACES_SAMPLER_ARG's ratio."""
    if given_exporter or os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    from opentelemetry.sdk.trace.sampling import (
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
        TraceIdRatioBased,
    )
    from opentelemetry.trace import SpanKind

    try:
        ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG") or DEFAULT_RATIO)
    except ValueError:
        ratio = DEFAULT_RATIO
    ratio_based = TraceIdRatioBased(min(max(ratio, 0.0), 1.0))

    class Roots(Sampler):
        """A trace starts at what something asked for (a request, an event to publish), at
        the ratio; not at a statement or call out made outside any (a relay's claim, a
        loop's poll): alone, those are noise in the traces and cost every process."""

        def should_sample(self, parent_context: Any, trace_id: int, name: str,
                          kind: Any = None, attributes: Any = None, links: Any = None,
                          trace_state: Any = None) -> Any:
            if kind == SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return ratio_based.should_sample(parent_context, trace_id, name, kind,
                                             attributes, links, trace_state)

        def get_description(self) -> str:
            return f"Roots{{not CLIENT, {ratio_based.get_description()}}}"

    return ParentBased(Roots())


def shutdown() -> None:
    """Flush and turn tracing off (a process's end, a test's)."""
    provider = _state.pop("provider", None)
    _state.pop("tracer", None)
    if provider is not None:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        RequestsInstrumentor().uninstrument()
        provider.shutdown()


def instrument_app(app: Any) -> None:
    """A SERVER span per request, named by method and route, a child of the request's
    `traceparent` header if it has one, current while the request is handled.

    Not opentelemetry-instrumentation-flask: it works out the request's attributes twice and
    its URL twice for every request, sampled or not (for metrics and its exclusion list as
    well as the span), about 0.2 ms a request, more than the 15% all of tracing may cost a
    list request (bench/tracing.py). Here a request whose trace is not sampled costs a
    header lookup and a non-recording span; the attributes are only made for a span that
    records (OpenTelemetry's HTTP semantic conventions)."""
    if not enabled():
        return
    from flask import g, request
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    tracer, propagator = _state["tracer"], _state["propagator"]

    def start_span() -> None:
        rule = request.url_rule.rule if request.url_rule else None
        parent = propagator.extract(request.headers) if "traceparent" in request.headers \
            else None
        span = tracer.start_span(f"{request.method} {rule}" if rule else request.method,
                                 context=parent, kind=trace.SpanKind.SERVER)
        if span.is_recording():
            span.set_attributes({
                "http.request.method": request.method, "url.path": request.path,
                "url.scheme": request.scheme, "server.address": request.host,
                "client.address": request.remote_addr or "",
                "user_agent.original": request.user_agent.string,
                **({"http.route": rule} if rule else {})})
        g.trace_span = span
        g.trace_token = otel_context.attach(trace.set_span_in_context(span))

    def record_status(response: Any) -> Any:
        span = g.get("trace_span")
        if span is not None and span.is_recording():
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return response

    def end_span(error: BaseException | None) -> None:
        span = g.pop("trace_span", None)
        if span is None:
            return
        if error is not None and span.is_recording():
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()
        otel_context.detach(g.pop("trace_token"))

    app.before_request_funcs.setdefault(None, []).insert(0, start_span)  # before all others
    app.after_request(record_status)
    app.teardown_request(end_span)


def instrument_engine(engine: Any) -> None:
    """Every statement on `engine`'s connections in a span (psycopg's instrumentation, on
    each connection the pool opens: SQLAlchemy's own instrumentation does not support 2.1)."""
    if enabled():
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from sqlalchemy import event

        provider = _state["provider"]

        @event.listens_for(engine, "connect")
        def traced(dbapi_connection: Any, _record: Any) -> None:
            PsycopgInstrumentor.instrument_connection(dbapi_connection,
                                                      tracer_provider=provider)


def current_traceparent() -> str | None:
    """The current span's W3C `traceparent`, to travel with an event; None when off."""
    return _traceparent(None) if enabled() else None


def _parent_context(parent: str | None) -> tuple[Any, bool]:
    """The context a span under `parent` starts in, and whether that trace is unsampled
    (parent-based: then no span is made at all). No parent: a root, whatever span is
    current (the relay holds a batch's publish spans open together: each event's must not
    become the next one's parent)."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    if not parent:
        return otel_context.Context(), False
    context = _state["propagator"].extract({"traceparent": parent})
    remote = trace.get_current_span(context).get_span_context()
    return context, remote.is_valid and not remote.trace_flags.sampled


def _traceparent(context: Any) -> str | None:
    carrier: dict[str, str] = {}
    _state["propagator"].inject(carrier, context=context)
    return carrier.get("traceparent")


@contextlib.contextmanager
def span(name: str, *, parent: str | None, kind: str, **attributes: Any
         ) -> Iterator[str | None]:
    """A span named `name`, a child of the W3C context `parent` (None: a root), current
    inside the block; yields its own traceparent (None when tracing is off)."""
    if not enabled():
        yield None
        return
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    context, unsampled = _parent_context(parent)
    if unsampled:
        # The root decided not to record this trace, and every span under it follows
        # (parent-based): no span to make. Its context is current inside the block, so log
        # lines still carry the trace's ids, and the parent is handed on as it is.
        token = otel_context.attach(context)
        try:
            yield parent
        finally:
            otel_context.detach(token)
        return
    with _state["tracer"].start_as_current_span(
            name, context=context, kind=getattr(trace.SpanKind, kind),
            attributes=attributes):
        yield _traceparent(None)


def start_span(name: str, *, parent: str | None, kind: str, **attributes: Any
               ) -> tuple[Any, str | None]:
    """A span as `span` makes it, but never current, for the caller to `.end()`: the
    relay's publish span per event of a batch, where nothing runs inside one span. Returns
    the span (None under an unsampled parent, or when off) and the traceparent to hand on."""
    if not enabled():
        return None, None
    from opentelemetry import trace

    context, unsampled = _parent_context(parent)
    if unsampled:
        return None, parent
    own = _state["tracer"].start_span(name, context=context, kind=getattr(trace.SpanKind, kind),
                                      attributes=attributes)
    return own, _traceparent(trace.set_span_in_context(own))


def end_span(own: Any, error: BaseException | None) -> bool:
    """End a span from `start_span`, marked failed with `error` if there is one; False,
    so that used as an ExitStack's exit callback it lets the error go on."""
    if error is not None and own.is_recording():
        from opentelemetry.trace import Status, StatusCode

        own.record_exception(error)
        own.set_status(Status(StatusCode.ERROR, type(error).__name__))
    own.end()
    return False


def log_ids() -> dict[str, str]:
    """trace_id and span_id of the current span, for a log line ({} when off or none)."""
    if not enabled():
        return {}
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
