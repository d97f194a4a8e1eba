"""The outbox relay: publishes committed events to RabbitMQ, then marks them sent.

Each row goes out under its type as routing key, or under the key the row names (an event
addressed to one service: `shared.bus.addressed_key`).

It wakes on the NOTIFY that the outbox's insert trigger sends, which PostgreSQL delivers at
commit (so latency is a round trip, not a poll interval), and also every `catch_up_s` in case
a notification was missed while its LISTEN connection was down. Rows are locked FOR UPDATE
SKIP LOCKED while in flight, so several relays of one service share the work without sending
a row twice in the normal case; a relay that dies after publishing but before marking leaves
the rows to be sent again, which consumers absorb through their inbox. Nothing is marked sent
that was not confirmed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select

from shared import bus, health, tracing
from shared.config import Settings
from shared.db import Database
from shared.health import Pulse
from shared.retry import Backoff, keep_running

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, settings: Settings, db: Database, *, catch_up_s: float = 5.0,
                 pulse: Pulse | None = None) -> None:
        self.settings = settings
        self.db = db
        self.catch_up_s = catch_up_s
        self.pulse = pulse or Pulse("outbox-relay")
        self.publisher = bus.ConfirmingPublisher(
            bus.connect(settings.amqp_url), names=bus.Names(settings.namespace)
        )
        self.sent_total = 0
        self._last_prune = 0.0
        table = f'"{db.schema}".outbox'
        self._claim_sql = f"""
            WITH batch AS (
                SELECT seq FROM {table} WHERE sent_at IS NULL
                ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED)
            UPDATE {table} o SET sent_at = now() FROM batch WHERE o.seq = batch.seq
            RETURNING o.seq, o.event_id, o.type, o.payload::text,
                      o.payload->>'traceparent', coalesce(o.routing_key, o.type)"""

    def relay_batch(self) -> int:
        """Publish one batch of unsent rows; returns how many were sent.

        Claim and mark in one statement, publish, then commit: if publishing fails the
        transaction rolls back and the rows are unsent again. This is the latency path, so
        it runs on the pool's DBAPI connection with a prepared statement, no ORM in between.
        """
        conn = self.db.engine.raw_connection()
        try:
            cursor: Any = conn.cursor()  # a psycopg cursor (prepare= is psycopg's)
            cursor.execute(self._claim_sql, (self.settings.relay_batch,), prepare=True)
            rows = sorted(cursor.fetchall())
            cursor.close()
            if not rows:
                conn.commit()
                return 0
            with contextlib.ExitStack() as spans:
                headers = self._publish_spans(spans, rows)
                started = time.perf_counter()
                self.publisher.publish([
                    bus.Outgoing(
                        exchange=self.publisher.names.events,
                        routing_key=key,
                        body=body.encode(),  # the stored JSON as is: no parse, no dump
                        message_id=event_id,
                        headers=header,
                    )
                    for (_seq, event_id, _type, body, _parent, key), header in zip(
                        rows, headers, strict=True)
                ])
                health.RELAY_PUBLISH.observe(time.perf_counter() - started)
            conn.commit()
        except BaseException:
            driver: Any = conn.driver_connection
            if driver is None or driver.broken or driver.closed:
                conn.invalidate()  # the database went away: never pool this connection again
            else:
                conn.rollback()
            raise
        finally:
            conn.close()  # back to the pool (or discarded, if invalidated)
        self.sent_total += len(rows)
        health.RELAY_BATCHES.inc()
        health.RELAY_EVENTS.inc(len(rows))
        return len(rows)

    def backlog(self) -> dict[str, float]:
        """Rows not yet published, and how long the oldest has waited (0 when none)."""
        outbox = self.db.outbox
        with self.db.engine.connect() as conn:
            pending, oldest = conn.execute(
                select(func.count(), func.coalesce(
                    func.extract("epoch", func.now() - func.min(outbox.c.created_at)), 0))
                .where(outbox.c.sent_at.is_(None))).one()
        return {"outbox_pending": float(pending), "outbox_oldest_age_seconds": float(oldest)}

    @staticmethod
    def _publish_spans(spans: contextlib.ExitStack, rows: list[Any]) -> list[dict[str, str]]:
        """Tracing on: a `publish <type>` span per event, a child of the trace it was raised
        in, open until the batch is confirmed; its context goes in the message's header for
        the consumer to continue. Off: no headers."""
        if not tracing.enabled():
            return [{} for _ in rows]
        headers = []
        for _seq, event_id, type_, _body, parent, _key in rows:
            # Not current (nothing runs inside one event's span): cheaper by half.
            own, handed_on = tracing.start_span(
                f"publish {type_}", parent=parent, kind="PRODUCER", **{
                    "messaging.system": "rabbitmq", "messaging.message.id": event_id,
                    "messaging.destination.name": type_})
            if own is not None:  # ended when the batch is confirmed, failed if it fails
                spans.push(lambda _type, error, _tb, own=own: tracing.end_span(own, error))
            headers.append({"traceparent": handed_on} if handed_on else {})
        return headers

    def drain(self) -> int:
        """Send everything pending now, batch after batch."""
        total = 0
        while True:
            sent = self.relay_batch()
            total += sent
            if sent < self.settings.relay_batch:
                return total

    def prune(self, *, inbox_retention: timedelta = timedelta(days=30)) -> None:
        retention = timedelta(seconds=self.settings.outbox_retention_s)
        with self.db.engine.begin() as conn:
            conn.execute(delete(self.db.outbox).where(
                self.db.outbox.c.sent_at < func.now() - retention))
            conn.execute(delete(self.db.inbox).where(
                self.db.inbox.c.processed_at < func.now() - inbox_retention))

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set; survives broker and database outages."""

        def session(backoff: Backoff) -> None:
            with self.db.listen(self.db.notify_channel) as listener:
                self.drain()  # catch up on whatever was committed while we were away
                backoff.reset()
                self.pulse.up()
                last_drain = time.monotonic()
                while not stop.is_set():
                    self.pulse.beat()
                    woke = any(True for _ in listener.notifies(timeout=1.0, stop_after=1))
                    if woke or time.monotonic() - last_drain >= self.catch_up_s:
                        self.drain()
                        last_drain = time.monotonic()
                    self._maybe_prune()

        keep_running(session, stop, what="outbox relay", pulse=self.pulse)
        self.publisher.reset()

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune > 60:
            self._last_prune = now
            self.prune()
