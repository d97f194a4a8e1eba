"""The one event bus: RabbitMQ through kombu.

Topology (names say who publishes and who consumes):
- `growth.events` (topic): every event, routing key = event type.
- `<svc>.events` (quorum): one per consuming service, bound to the types it handles.
- `growth.retry` (direct) -> `<svc>.retry.<ms>` queues: a failed message waits out its delay
  there, then dead-letters through `growth.requeue` (direct, key `<svc>`) back to `<svc>.events`.
- `growth.dead` (direct) -> `<svc>.dead` (quorum): messages that failed every attempt or can
  never succeed; `python -m shared.dlq` lists and replays them.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import amqp
from kombu import Connection, Exchange, Queue, binding

log = logging.getLogger(__name__)

RETRY_EXCHANGE = "growth.retry"
REQUEUE_EXCHANGE = "growth.requeue"
DEAD_EXCHANGE = "growth.dead"
CONTENT_TYPE = "application/cloudevents+json"
# A worker that crashes on a message every time must not loop forever: the quorum queue
# dead-letters a message after this many deliveries, whatever the consumer did.
DELIVERY_LIMIT = 20


class PublishFailed(RuntimeError):
    """The broker did not confirm every message of a batch."""


def connect(url: str, *, heartbeat: int = 30) -> Connection:
    return Connection(url, heartbeat=heartbeat, connect_timeout=5, transport_options={
        "confirm_publish": False,
    })


def queue_name(service: str) -> str:
    return f"{service}.events"


def dead_queue_name(service: str) -> str:
    return f"{service}.dead"


def retry_queue_name(service: str, delay_ms: int) -> str:
    return f"{service}.retry.{delay_ms}"


def events_exchange(name: str) -> Exchange:
    return Exchange(name, type="topic", durable=True)


def service_queues(
    service: str, exchange: str, types: Iterable[str], retry_delays_ms: Iterable[int]
) -> list[Queue]:
    """Every queue a consuming service owns, with its bindings and dead-letter arguments."""
    events = events_exchange(exchange)
    requeue = Exchange(REQUEUE_EXCHANGE, type="direct", durable=True)
    retry = Exchange(RETRY_EXCHANGE, type="direct", durable=True)
    dead = Exchange(DEAD_EXCHANGE, type="direct", durable=True)
    main_args = {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_EXCHANGE,
        "x-dead-letter-routing-key": service,
        "x-delivery-limit": DELIVERY_LIMIT,
    }

    bindings = [binding(events, routing_key=t) for t in sorted(set(types))]
    bindings.append(binding(requeue, routing_key=service))
    queues = [Queue(queue_name(service), bindings=bindings, durable=True,
                    queue_arguments=main_args)]
    for delay in retry_delays_ms:
        queues.append(Queue(
            retry_queue_name(service, delay), exchange=retry,
            routing_key=retry_queue_name(service, delay), durable=True,
            queue_arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": delay,
                "x-dead-letter-exchange": REQUEUE_EXCHANGE,
                "x-dead-letter-routing-key": service,
            },
        ))
    queues.append(Queue(dead_queue_name(service), exchange=dead, routing_key=service,
                        durable=True, queue_arguments={"x-queue-type": "quorum"}))
    return queues


def declare(channel: Any, exchange: str, queues: Iterable[Queue] = ()) -> None:
    """Idempotent: called on every (re)connect, so a reset broker gets its topology back."""
    events_exchange(exchange)(channel).declare()
    for name in (RETRY_EXCHANGE, REQUEUE_EXCHANGE, DEAD_EXCHANGE):
        Exchange(name, type="direct", durable=True)(channel).declare()
    for queue in queues:
        queue(channel).declare()


@dataclass(frozen=True)
class Outgoing:
    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, Any]


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":")).encode()


class ConfirmingPublisher:
    """Publishes a batch, then waits once for the broker to confirm all of it.

    Waiting per batch instead of per message is what lets the relay go faster than the
    one-at-a-time floor while still never marking a row sent that the broker has not taken.
    """

    def __init__(self, connection: Connection, *, exchange: str, timeout: float = 10.0) -> None:
        self.connection = connection
        self.exchange = exchange
        self.timeout = timeout
        self._channel: Any = None

    def _ensure_channel(self) -> Any:
        if self._channel is None or not getattr(self._channel, "is_open", False):
            self.connection.ensure_connection(max_retries=1)
            channel = self.connection.channel()
            declare(channel, self.exchange)
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self._channel = channel
            self._next_tag = 1
            self._pending: set[int] = set()
            self._nacked = 0
        return self._channel

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._pending = {t for t in self._pending if t > delivery_tag}
        else:
            self._pending.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        before = len(self._pending)
        self._on_ack(delivery_tag, multiple)
        self._nacked += before - len(self._pending)

    def publish(self, messages: list[Outgoing]) -> None:
        if not messages:
            return
        try:
            channel = self._ensure_channel()
            self._nacked = 0
            for m in messages:
                msg = amqp.Message(
                    m.body, content_type=CONTENT_TYPE, delivery_mode=2,
                    message_id=m.message_id, application_headers=m.headers,
                )
                self._pending.add(self._next_tag)
                self._next_tag += 1
                channel.basic_publish(msg, exchange=m.exchange, routing_key=m.routing_key)
            deadline = time.monotonic() + self.timeout
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PublishFailed(f"{len(self._pending)} messages not confirmed in time")
                try:
                    self.connection.drain_events(timeout=remaining)
                except TimeoutError:
                    continue
        except (OSError, amqp.exceptions.AMQPError, PublishFailed) as exc:
            self.reset()
            raise PublishFailed(str(exc)) from exc
        if self._nacked:
            raise PublishFailed(f"broker refused {self._nacked} messages")

    def reset(self) -> None:
        """Forget the channel and connection; the next publish reconnects."""
        self._channel = None
        try:
            self.connection.collect()
        except Exception:  # noqa: BLE001 - tearing down a broken connection
            pass
        try:
            self.connection.close()
        except Exception:  # noqa: BLE001
            pass


def drain_ready(connection: Connection, *, wait: float, max_more: int) -> None:
    """Wait up to `wait` for one delivery, then take what is already there without waiting."""
    try:
        connection.drain_events(timeout=wait)
    except (TimeoutError, socket.timeout):
        return
    for _ in range(max_more):
        try:
            connection.drain_events(timeout=0.0005)
        except (TimeoutError, socket.timeout):
            return
