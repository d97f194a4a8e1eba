"""The one event bus: RabbitMQ through kombu.

Topology (names say who publishes and who consumes; `growth` is the default namespace):
- `growth.events` (topic): every event, routing key = event type.
- `growth.<svc>.events` (quorum): one per consuming service, bound to the types it handles,
  and to `to.<svc>.#` for the events addressed to it alone (a resync's snapshots and its
  completion, published under `to.<svc>.<type>`: no other queue receives them).
- `growth.retry` (direct) -> `growth.<svc>.retry.<ms>`: a failed message waits out its delay
  there, then dead-letters through `growth.requeue` (direct, key `<svc>`) back to its queue.
- `growth.dead` (direct) -> `growth.<svc>.dead` (quorum): messages that failed every attempt
  or can never succeed; `python -m shared.dlq` lists and replays them.
- `growth.<svc>.jobs` (quorum): a service's own slow work, published through its outbox like
  any event and bound to its job types only, so slow jobs never hold up its event queue
  (stories' generations); dead-letters to `growth.<svc>.dead`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import amqp
from kombu import Connection, Exchange, Queue, binding

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json"
# A worker that crashes on a message every time must not loop forever: the quorum queue
# dead-letters a message after this many deliveries, whatever the consumer did.
DELIVERY_LIMIT = 20


class PublishFailed(RuntimeError):
    """The broker did not confirm every message of a batch."""


def connect(url: str, *, heartbeat: int = 30) -> Connection:
    return Connection(url, heartbeat=heartbeat, connect_timeout=5)


@dataclass(frozen=True)
class Names:
    """Every exchange and queue name, under one namespace (tests use their own)."""

    namespace: str = "growth"

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def retry(self) -> str:
        return f"{self.namespace}.retry"

    @property
    def requeue(self) -> str:
        return f"{self.namespace}.requeue"

    @property
    def dead(self) -> str:
        return f"{self.namespace}.dead"

    def queue(self, service: str) -> str:
        return f"{self.namespace}.{service}.events"

    def retry_queue(self, service: str, delay_ms: int) -> str:
        return f"{self.namespace}.{service}.retry.{delay_ms}"

    def dead_queue(self, service: str) -> str:
        return f"{self.namespace}.{service}.dead"

    def jobs_queue(self, service: str) -> str:
        return f"{self.namespace}.{service}.jobs"


# Event types that are only ever sent to the one service that asked for them (shared.resync).
ADDRESSED_SUFFIXES = (".snapshot", ".resync.completed")


def is_addressed(type_: str) -> bool:
    return type_.endswith(ADDRESSED_SUFFIXES)


def addressed_key(service: str, type_: str) -> str:
    """The routing key of an event meant for `service` alone: only its queue binds it."""
    return f"to.{service}.{type_}"


def _direct(name: str) -> Exchange:
    return Exchange(name, type="direct", durable=True)


def service_queues(
    names: Names, service: str, types: Iterable[str], retry_delays_ms: Iterable[int]
) -> list[Queue]:
    """Every queue a consuming service owns, with its bindings and dead-letter arguments.

    The first is the one it consumes from."""
    events = Exchange(names.events, type="topic", durable=True)
    wanted = sorted(set(types))
    bindings = [binding(events, routing_key=t) for t in wanted if not is_addressed(t)]
    if any(is_addressed(t) for t in wanted):
        bindings.append(binding(events, routing_key=addressed_key(service, "#")))
    bindings.append(binding(_direct(names.requeue), routing_key=service))
    queues = [Queue(names.queue(service), bindings=bindings, durable=True, queue_arguments={
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": names.dead,
        "x-dead-letter-routing-key": service,
        "x-delivery-limit": DELIVERY_LIMIT,
    })]
    for delay in retry_delays_ms:
        key = names.retry_queue(service, delay)
        queues.append(Queue(key, exchange=_direct(names.retry), routing_key=key, durable=True,
                            queue_arguments={
                                "x-queue-type": "quorum",
                                "x-message-ttl": delay,
                                "x-dead-letter-exchange": names.requeue,
                                "x-dead-letter-routing-key": service,
                            }))
    queues.append(Queue(names.dead_queue(service), exchange=_direct(names.dead),
                        routing_key=service, durable=True,
                        queue_arguments={"x-queue-type": "quorum"}))
    return queues


def jobs_queue(names: Names, service: str, types: Iterable[str], *,
               delivery_limit: int = 5) -> Queue:
    """A service's job queue, bound to its job types on the events exchange. A job whose
    worker dies on it `delivery_limit` times is dead-lettered (the service must then settle
    it some other way: stories' sweeper fails a story whose job never finished)."""
    events = Exchange(names.events, type="topic", durable=True)
    return Queue(names.jobs_queue(service), durable=True,
                 bindings=[binding(events, routing_key=t) for t in sorted(set(types))],
                 queue_arguments={
                     "x-queue-type": "quorum",
                     "x-dead-letter-exchange": names.dead,
                     "x-dead-letter-routing-key": service,
                     "x-delivery-limit": delivery_limit,
                 })


def declare(channel: Any, names: Names, queues: Iterable[Queue] = ()) -> None:
    """Idempotent: called on every (re)connect, so a reset broker gets its topology back."""
    Exchange(names.events, type="topic", durable=True)(channel).declare()
    for name in (names.retry, names.requeue, names.dead):
        _direct(name)(channel).declare()
    for queue in queues:
        queue(channel).declare()


def delete_namespace(url: str, names: Names, services: Iterable[str],
                     retry_delays_ms: Iterable[int]) -> None:
    """Remove every queue and exchange of a namespace (tests and benchmarks clean up)."""
    delays = list(retry_delays_ms)
    with Connection(url) as conn:
        channel = conn.channel()
        for service in services:
            for queue in [names.queue(service), names.dead_queue(service),
                          names.jobs_queue(service),
                          *(names.retry_queue(service, d) for d in delays)]:
                channel.queue_delete(queue)
        for exchange in (names.events, names.retry, names.requeue, names.dead):
            channel.exchange_delete(exchange)


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

    def __init__(self, connection: Connection, *, names: Names, timeout: float = 10.0) -> None:
        self.connection = connection
        self.names = names
        self.timeout = timeout
        self._channel: Any = None

    def _ensure_channel(self) -> Any:
        if self._channel is None or not getattr(self._channel, "is_open", False):
            self.connection.ensure_connection(max_retries=1)
            channel = self.connection.channel()
            declare(channel, self.names)
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
        with contextlib.suppress(Exception):  # tearing down a connection that may be broken
            self.connection.collect()


def drain_ready(connection: Connection, *, wait: float, max_more: int) -> None:
    """Wait up to `wait` for one delivery, then take what is already there without waiting."""
    try:
        connection.drain_events(timeout=wait)
    except TimeoutError:
        return
    for _ in range(max_more):
        try:
            connection.drain_events(timeout=0)  # non-blocking: only what already arrived
        except TimeoutError:
            return


def main(argv: list[str] | None = None) -> int:
    """`python -m shared.bus purge`: delete this copy's exchanges and queues (its namespace,
    EVENT_NAMESPACE), messages and dead letters included. What `make purge` runs."""
    import argparse

    from shared.config import SERVICES, Settings, load_env_file

    load_env_file()
    parser = argparse.ArgumentParser(prog="python -m shared.bus")
    parser.add_argument("command", choices=["purge"])
    parser.parse_args(argv)
    settings = Settings.from_env("goals")
    delete_namespace(settings.amqp_url, Names(settings.namespace), SERVICES,
                     settings.retry_delays_ms)
    print(f"bus: deleted the exchanges and queues of namespace {settings.namespace}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
