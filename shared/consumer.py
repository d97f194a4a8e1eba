"""The idempotent consumer: what a service does when events arrive.

A batch of deliveries is applied in one transaction. Each event's id goes into the
service's inbox in that same transaction, so a redelivery, a duplicate or a replay finds
its id there and changes nothing. An event about a user that has a tombstone is recorded
and ignored, so nothing about a deleted user comes back. Acks go out only after commit:
a worker killed in between gets the batch redelivered, and the inbox absorbs it.

A handler that raises is retried after a delay (bounded, with backoff), then parked in the
service's dead-letter queue; a malformed message goes there at once. A database outage is
not the message's fault: the batch is held and retried until the database is back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kombu import Consumer
from kombu.message import Message
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from shared import bus, health, logs, tracing
from shared.config import Settings
from shared.db import Database, UnitOfWork, is_database_outage
from shared.events import Event, InvalidEvent, parse_event
from shared.health import Pulse
from shared.retry import Backoff, keep_running

log = logging.getLogger(__name__)

USER_DELETED = "auth.user.deleted"
P = TypeVar("P")


class Handler:
    """What a consumer runs for an event type: `each(fn)` calls `fn(uow, event)` once per
    event; `batch(fn)` calls `fn(uow, events)` once with the consecutive events of a
    delivered batch that it handles (one statement for many, where it can).

    `reads`: the payload fields the handler uses, its contract with the producer. A test
    (tests/integration/test_event_catalogue.py) holds every declared field to the
    producer's schema, so a producer cannot drop or rename a field somebody reads, and
    fails for a handler that declares nothing."""

    def __init__(self, fn: Callable[[UnitOfWork, list[Event[Any]]], None], *,
                 batched: bool, reads: Iterable[str] | None = None) -> None:
        self.fn = fn
        self.batched = batched
        self.reads = frozenset(reads) if reads is not None else None
        self.__name__ = getattr(fn, "__name__", "handler")

    def __call__(self, uow: UnitOfWork, events: list[Event[Any]]) -> None:
        self.fn(uow, events)


def each(fn: Callable[[UnitOfWork, Event[P]], None], *,
         reads: Iterable[str] | None = None) -> Handler:
    def one_by_one(uow: UnitOfWork, events: list[Event[Any]]) -> None:
        for event in events:
            with logs.log_context(event_id=event.id, correlation_id=event.correlation_id):
                fn(uow, event)

    one_by_one.__name__ = getattr(fn, "__name__", "handler")
    return Handler(one_by_one, batched=False, reads=reads)


def batch(fn: Callable[[UnitOfWork, list[Event[P]]], None], *,
          reads: Iterable[str] | None = None) -> Handler:
    return Handler(fn, batched=True, reads=reads)


Handlers = dict[str, Handler]


@dataclass
class Delivery:
    message: Message
    event: Event[Any] | None = None
    error: str | None = None
    permanent: bool = False
    attempts: int = 0
    effects: list[Any] = field(default_factory=list)
    outcome: str = "applied"  # or, once settled after a failure: retried, dead_lettered


def _apply_span(d: Delivery) -> contextlib.AbstractContextManager[str | None]:
    """`apply <type>`, a child of the relay's publish span (the message's header) or, for a
    message without one, of the trace that raised the event (its envelope)."""
    assert d.event is not None
    headers = (d.message.headers or {}) if d.message is not None else {}
    parent = headers.get("traceparent") or d.event.traceparent
    return tracing.span(f"apply {d.event.type}", parent=parent, kind="CONSUMER", **{
        "messaging.system": "rabbitmq", "messaging.message.id": d.event.id,
        "messaging.destination.name": d.event.type})


class EventConsumer:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        handlers: Handlers,
        *,
        name: str | None = None,
        pulse: Pulse | None = None,
    ) -> None:
        self.settings = settings
        self.pulse = pulse or Pulse("consumer")
        self.db = db
        self.handlers = handlers
        self.name = name or settings.service
        self.names = bus.Names(settings.namespace)
        schema = db.schema
        self._claim_sql = text(f"""
            WITH claimed AS (
                INSERT INTO "{schema}".inbox (consumer, event_id, type)
                SELECT :consumer, id, type
                FROM unnest(CAST(:ids AS varchar[]), CAST(:types AS varchar[])) AS e(id, type)
                ON CONFLICT DO NOTHING
                RETURNING event_id)
            SELECT 'new', event_id FROM claimed
            UNION ALL
            SELECT 'dead', user_id FROM "{schema}".deleted_user
            WHERE user_id = ANY(CAST(:users AS varchar[]))""")
        self.applied_total = 0
        self._batch: list[Delivery] = []

    # -- applying a batch -------------------------------------------------------------

    def apply(self, deliveries: list[Delivery]) -> None:
        """Apply a batch in one transaction; marks each delivery's outcome.

        Optimistic first: the whole batch without savepoints, batched handlers given their
        events together. If a handler fails, the transaction is rolled back and the batch
        applied again one event at a time, each in a savepoint, to single out the culprit.
        """
        fresh = [d for d in deliveries if d.event is not None and d.error is None]
        if not fresh:
            return
        try:
            self._apply(fresh, isolate=False)
        except Exception as exc:
            if is_database_outage(exc):
                raise
            if len(fresh) == 1:  # nothing to single out: this one failed
                self._failed(fresh[0], exc)
            else:
                self._apply(fresh, isolate=True)
        self.applied_total += len(fresh)

    @staticmethod
    def _failed(d: Delivery, exc: Exception) -> None:
        d.error = f"{type(exc).__name__}: {exc}"
        d.permanent = isinstance(exc, InvalidEvent)
        log.warning("handler failed", extra={
            "event_id": d.event.id if d.event else None,
            "type": d.event.type if d.event else None, "error": d.error})

    def _claim(self, session: Any, fresh: list[Delivery]) -> tuple[set[str], set[str]]:
        """One round trip: record the batch in the inbox (which ids are new?) and find the
        tombstoned users among its subjects. Plain SQL over arrays, so the statement is the
        same whatever the batch size (no per-batch compilation)."""
        events = [d.event for d in fresh if d.event]
        rows = session.execute(self._claim_sql, {
            "consumer": self.name,
            "ids": [e.id for e in events],
            "types": [e.type for e in events],
            "users": sorted({e.user_id for e in events if e.user_id}),
        })
        new_ids: set[str] = set()
        dead_users: set[str] = set()
        for kind, value in rows:
            (new_ids if kind == "new" else dead_users).add(value)
        return new_ids, dead_users

    def _apply(self, fresh: list[Delivery], *, isolate: bool) -> None:
        for d in fresh:
            d.error, d.permanent = None, False
        with UnitOfWork(self.db, source=self.settings.service) as uow:
            session = uow.session
            new_ids, dead_users = self._claim(session, fresh)
            runs: list[tuple[Handler, list[Delivery]]] = []
            for d in fresh:
                event = d.event
                assert event is not None
                if event.id not in new_ids:
                    continue  # already applied: a redelivery or a duplicate
                if event.user_id in dead_users and event.type != USER_DELETED:
                    continue  # about a deleted user: recorded, never applied
                if event.type == USER_DELETED and event.user_id:
                    session.execute(insert(self.db.tombstones)
                                    .values(user_id=event.user_id).on_conflict_do_nothing())
                    dead_users.add(event.user_id)  # later events of this batch: ignored
                handler = self.handlers.get(event.type)
                if handler is None:
                    continue
                if not isolate and runs and runs[-1][0].fn is handler.fn and handler.batched:
                    runs[-1][1].append(d)
                else:
                    runs.append((handler, [d]))
            for handler, group in runs:
                if isolate:
                    self._run_isolated(uow, handler, group[0])
                else:
                    self._run(uow, handler, group)
            failed = [d.event.id for d in fresh if d.error and d.event]
            if failed:  # a failed event must be retried, so its inbox row must not stand
                session.execute(self.db.inbox.delete().where(
                    self.db.inbox.c.consumer == self.name,
                    self.db.inbox.c.event_id.in_(failed)))
            uow.commit()

    @staticmethod
    def _run(uow: UnitOfWork, handler: Handler, group: list[Delivery]) -> None:
        with contextlib.ExitStack() as spans:
            if tracing.enabled():  # each event applied in a span of its own trace
                for d in group:
                    spans.enter_context(_apply_span(d))
            handler(uow, [d.event for d in group if d.event])

    def _run_isolated(self, uow: UnitOfWork, handler: Handler, d: Delivery) -> None:
        event = d.event
        assert event is not None
        mark = len(uow.recorded)
        try:
            with uow.session.begin_nested(), logs.log_context(
                event_id=event.id, correlation_id=event.correlation_id
            ):
                self._run(uow, handler, [d])
                uow.flush_events()
        except Exception as exc:
            if is_database_outage(exc):
                raise
            del uow.recorded[mark:]
            self._failed(d, exc)

    # -- settling deliveries ----------------------------------------------------------

    def settle(self, deliveries: list[Delivery], publisher: bus.ConfirmingPublisher) -> None:
        """After commit: park or delay the failures (confirmed), then ack everything."""
        outgoing = []
        for d in deliveries:
            if d.error is None:
                continue
            headers = dict(d.message.headers or {})
            attempts = int(headers.get("x-attempts", 0)) + 1
            headers.update({"x-attempts": attempts, "x-last-error": d.error[:500],
                            "x-original-routing-key": d.message.delivery_info.get(
                                "routing_key", "")})
            delays = self.settings.retry_delays_ms
            if d.permanent or attempts >= self.settings.max_attempts or not delays:
                d.outcome = "dead_lettered"
                exchange, key = self.names.dead, self.settings.service
                log.error("event dead-lettered", extra={
                    "message_id": d.message.properties.get("message_id"),
                    "attempts": attempts, "error": d.error})
            else:
                d.outcome = "retried"
                delay = delays[min(attempts - 1, len(delays) - 1)]
                exchange = self.names.retry
                key = self.names.retry_queue(self.settings.service, delay)
            outgoing.append(bus.Outgoing(
                exchange=exchange, routing_key=key, body=d.message.body,
                message_id=str(d.message.properties.get("message_id") or ""), headers=headers,
            ))
        publisher.publish(outgoing)
        for d in deliveries:
            d.message.ack()
        for d in deliveries:
            type_ = d.event.type if d.event else "malformed"
            if d.error is not None:
                health.EVENTS.labels(type_, "failed").inc()
            health.EVENTS.labels(type_, d.outcome).inc()

    # -- the loop ---------------------------------------------------------------------

    def _receive(self, message: Message) -> None:
        """Raw message in (kombu's decoding skipped: the envelope is parsed once, here)."""
        delivery = Delivery(message=message)
        try:
            envelope = json.loads(message.body)
            if not isinstance(envelope, dict):
                raise InvalidEvent("envelope is not a JSON object")
            delivery.event = parse_event(envelope)
        except (ValueError, InvalidEvent) as exc:
            delivery.error = f"malformed: {exc}"
            delivery.permanent = True
        self._batch.append(delivery)

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop`; reconnects after broker restarts, waits out database ones."""

        def session(backoff: Backoff) -> None:
            connection = bus.connect(self.settings.amqp_url)
            try:
                connection.ensure_connection(max_retries=1)
                channel = connection.channel()
                queues = bus.service_queues(
                    self.names, self.settings.service, self.handlers,
                    self.settings.retry_delays_ms)
                bus.declare(channel, self.names, queues)
                channel.basic_qos(0, self.settings.consumer_prefetch, False)
                publisher = bus.ConfirmingPublisher(connection, names=self.names)
                consumer = Consumer(channel, queues=[queues[0]], on_message=self._receive,
                                    no_ack=False, accept=None)
                with consumer:
                    backoff.reset()
                    self.pulse.up()
                    log.info("consuming", extra={"queue": queues[0].name})
                    while not stop.is_set():
                        self.pulse.beat()
                        bus.drain_ready(connection, wait=1.0,
                                        max_more=self.settings.consumer_prefetch)
                        connection.heartbeat_check()
                        if self._batch:
                            batch, self._batch = self._batch, []
                            started = time.perf_counter()
                            self._apply_until_done(batch, stop)
                            self.settle(batch, publisher)
                            health.CONSUMER_BATCH.observe(time.perf_counter() - started)
            finally:
                with contextlib.suppress(Exception):
                    connection.release()

        def forget_batch() -> None:
            self._batch = []  # unacked: the broker redelivers them

        keep_running(session, stop, what="consumer", on_failure=forget_batch, pulse=self.pulse)

    def _apply_until_done(self, batch: list[Delivery], stop: threading.Event) -> None:
        backoff = Backoff(initial=0.5, ceiling=5.0)
        while True:
            try:
                self.apply(batch)
                self.pulse.up()
                return
            except Exception as exc:
                if not is_database_outage(exc) or stop.is_set():
                    raise
                log.warning("database unavailable, holding batch", extra={
                    "size": len(batch), "retry_in_s": backoff.delay})
                self.pulse.down("database unavailable, holding a batch")
                backoff.wait(stop)
