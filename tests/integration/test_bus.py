"""The event backbone against the real broker: retries, dead letters, redelivery, outages."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from kombu import Connection
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from shared import bus, health
from shared.config import Settings
from shared.consumer import Delivery, EventConsumer, Handlers, each
from shared.db import Database, UnitOfWork
from shared.events import Event
from shared.outbox import OutboxRelay
from tests.helpers import TcpProxy, event, new_user_id, queue_depth, queue_exists, wait_for

GOAL_TYPES = ("goals.goal.completed",)


@pytest.fixture
def namespace(infrastructure: dict[str, str]) -> Iterator[str]:
    """A bus namespace of the test's own, deleted afterwards."""
    ns = f"t{uuid.uuid4().hex[:10]}"
    yield ns
    bus.delete_namespace(infrastructure["amqp_url"], bus.Names(ns), ("probe", "goals"),
                         Settings.from_env("goals").retry_delays_ms)


class Running:
    """A consumer (and optionally a relay) running in threads of the test process."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, target: Any) -> None:
        thread = threading.Thread(target=target, args=(self.stop,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(20)


@pytest.fixture
def running() -> Iterator[Running]:
    r = Running()
    yield r
    r.close()


def probe_settings(namespace: str, **overrides: Any) -> Settings:
    """A pretend consuming service 'probe' that keeps its inbox in the goals schema."""
    base = Settings.from_env("goals", namespace=namespace, **overrides)
    return Settings(**{**base.__dict__, "service": "probe"})


def publish_raw(amqp_url: str, namespace: str, routing_key: str, body: bytes) -> None:
    with Connection(amqp_url) as conn:
        publisher = bus.ConfirmingPublisher(conn, names=bus.Names(namespace))
        publisher.publish([bus.Outgoing(exchange=bus.Names(namespace).events,
                                        routing_key=routing_key, body=body,
                                        message_id=str(uuid.uuid4()), headers={})])


def publish_event(amqp_url: str, namespace: str, e: Event) -> None:
    publish_raw(amqp_url, namespace, e.type, bus.encode(e.to_dict()))


def completed(user_id: str | None = None) -> Event:
    return event("goals.goal.completed", goal_id=new_user_id(), user_id=user_id or new_user_id(),
                 version=2, period="DAILY", completed_at=datetime(2026, 11, 24, 10, tzinfo=UTC))


def start_consumer(running: Running, settings: Settings, db: Database,
                   handlers: Handlers) -> EventConsumer:
    consumer = EventConsumer(settings, db, handlers)
    running.start(consumer.run)
    names = bus.Names(settings.namespace)
    wait_for(lambda: queue_exists(settings.amqp_url, names.dead_queue(settings.service)),
             message="consumer queue declared")
    return consumer


def test_a_poison_message_is_dead_lettered_and_the_next_one_still_applies(
        namespace: str, running: Running, dbs: Any, infrastructure: dict[str, str]) -> None:
    settings = probe_settings(namespace)
    seen: list[str] = []
    start_consumer(running, settings, dbs("goals"),
                   {"goals.goal.completed": each(lambda uow, e: seen.append(e.id))})
    amqp = infrastructure["amqp_url"]
    publish_raw(amqp, namespace, "goals.goal.completed", b"{not json")
    publish_raw(amqp, namespace, "goals.goal.completed", json.dumps(
        {"specversion": "1.0", "type": "goals.goal.completed", "id": "x", "source": "/t",
         "time": "2026-11-24T10:00:00+00:00", "data": {"goal_id": "g"}}).encode())
    good = completed()
    publish_event(amqp, namespace, good)
    wait_for(lambda: seen == [good.id], message="the good event applied")
    dead = bus.Names(namespace).dead_queue("probe")
    wait_for(lambda: queue_depth(amqp, dead) == 2, message="both poison messages parked")


def test_a_failing_handler_is_retried_with_backoff_then_parked(
        namespace: str, running: Running, dbs: Any, infrastructure: dict[str, str]) -> None:
    settings = probe_settings(namespace)
    attempts: list[str] = []

    def always_fails(uow: UnitOfWork, e: Event) -> None:
        attempts.append(e.id)
        raise RuntimeError("downstream rule broken")

    def counted(outcome: str) -> float:  # the worker's metrics (shared.health)
        labels = {"type": "goals.goal.completed", "outcome": outcome}
        return health.REGISTRY.get_sample_value("worker_events_total", labels) or 0.0

    before = {o: counted(o) for o in ("failed", "retried", "dead_lettered")}
    start_consumer(running, settings, dbs("goals"), {"goals.goal.completed": each(always_fails)})
    bad = completed()
    publish_event(infrastructure["amqp_url"], namespace, bad)
    dead = bus.Names(namespace).dead_queue("probe")
    wait_for(lambda: queue_depth(infrastructure["amqp_url"], dead) == 1, timeout=15,
             message="message parked after its attempts")
    assert attempts == [bad.id] * settings.max_attempts
    assert {o: counted(o) - n for o, n in before.items()} == {
        "failed": settings.max_attempts, "retried": settings.max_attempts - 1,
        "dead_lettered": 1}
    with Connection(infrastructure["amqp_url"]) as conn:
        message = conn.channel().basic_get(dead, no_ack=True)
        headers = message.properties["application_headers"]
        assert headers["x-attempts"] == settings.max_attempts
        assert "downstream rule broken" in headers["x-last-error"]
        assert json.loads(message.body)["id"] == bad.id


def test_a_handler_that_fails_once_is_applied_once_after_its_retry(
        namespace: str, running: Running, dbs: Any, infrastructure: dict[str, str]) -> None:
    settings = probe_settings(namespace)
    calls: list[str] = []
    applied: list[str] = []

    def flaky(uow: UnitOfWork, e: Event) -> None:
        calls.append(e.id)
        if len(calls) == 1:
            raise RuntimeError("transient")
        applied.append(e.id)

    start_consumer(running, settings, dbs("goals"), {"goals.goal.completed": each(flaky)})
    e = completed()
    publish_event(infrastructure["amqp_url"], namespace, e)
    wait_for(lambda: applied == [e.id], message="applied on the retry")
    assert queue_depth(infrastructure["amqp_url"], bus.Names(namespace).dead_queue("probe")) == 0


def test_a_consumer_that_dies_after_its_effect_but_before_the_ack_changes_nothing_twice(
        namespace: str, running: Running, dbs: Any, infrastructure: dict[str, str]) -> None:
    settings = probe_settings(namespace)
    effects: list[str] = []
    handlers = {"goals.goal.completed": each(lambda uow, e: effects.append(e.id))}
    amqp = infrastructure["amqp_url"]
    names = bus.Names(namespace)
    # Declare the topology, then play the consumer that dies: take, apply, never ack.
    with Connection(amqp) as conn:
        bus.declare(conn.channel(), names, bus.service_queues(
            names, "probe", handlers, settings.retry_delays_ms))
    e = completed()
    publish_event(amqp, namespace, e)
    dying = Connection(amqp)
    message = wait_for(lambda: dying.default_channel.basic_get(names.queue("probe"),
                                                               no_ack=False),
                       message="the event in the queue")
    from shared.events import parse_event

    EventConsumer(settings, dbs("goals"), handlers).apply(
        [Delivery(message=message, event=parse_event(json.loads(message.body)))])
    assert effects == [e.id]
    dying.close()  # the broker takes the unacked message back
    # A healthy consumer gets the redelivery and recognises it from the inbox.
    start_consumer(running, settings, dbs("goals"), handlers)
    wait_for(lambda: queue_depth(amqp, names.queue("probe")) == 0, message="redelivery acked")
    assert effects == [e.id]


def test_the_relay_waits_out_a_broker_outage_and_then_delivers_everything(
        namespace: str, running: Running, dbs: Any, infrastructure: dict[str, str]) -> None:
    amqp = infrastructure["amqp_url"]
    port = Connection(amqp).port or 5672
    proxy = TcpProxy(port)
    try:
        proxied = amqp.replace(f":{port}/", f":{proxy.port}/")
        settings = probe_settings(namespace)
        got: list[str] = []
        start_consumer(running, settings, dbs("goals"),
                       {"goals.goal.completed": each(lambda uow, e: got.append(e.id))})
        goals_db = dbs("goals")
        relay_settings = Settings.from_env("goals", namespace=namespace, amqp_url=proxied)
        relay = OutboxRelay(relay_settings, goals_db, catch_up_s=1.0)
        _mark_all_sent(goals_db)
        running.start(relay.run)
        first = _record(goals_db, completed())
        wait_for(lambda: got == [first], message="event through the healthy broker path")

        proxy.cut()
        during = [_record(goals_db, completed()) for _ in range(3)]
        with goals_db.engine.connect() as conn:
            unsent = conn.execute(select(func.count()).select_from(goals_db.outbox)
                                  .where(goals_db.outbox.c.sent_at.is_(None))).scalar_one()
        assert unsent >= 1  # committed, kept, waiting for the broker
        proxy.restore()
        wait_for(lambda: got == [first, *during], timeout=20,
                 message="events committed during the outage delivered in order")
    finally:
        proxy.close()


def test_two_relays_share_the_outbox_without_sending_a_row_twice(
        namespace: str, running: Running, dbs: Any, infrastructure: dict[str, str]) -> None:
    settings = probe_settings(namespace, consumer_prefetch=500)
    got: list[str] = []
    start_consumer(running, settings, dbs("goals"),
                   {"goals.goal.completed": each(lambda uow, e: got.append(e.id))})
    goals_db = dbs("goals")
    _mark_all_sent(goals_db)
    with UnitOfWork(goals_db, source="/tests") as uow:
        for _ in range(600):
            uow.publish("goals.goal.completed", completed().data)
        uow.commit()
    relay_settings = Settings.from_env("goals", namespace=namespace, relay_batch=50)
    relays = [OutboxRelay(relay_settings, goals_db) for _ in range(2)]
    for relay in relays:
        running.start(relay.run)
    wait_for(lambda: len(got) >= 600, timeout=30, message="all 600 delivered")
    assert len(set(got)) == 600
    assert all(relay.sent_total > 0 for relay in relays), [r.sent_total for r in relays]
    assert sum(relay.sent_total for relay in relays) == 600


def test_sent_rows_are_pruned_after_their_retention(dbs: Any) -> None:
    goals_db = dbs("goals")
    _mark_all_sent(goals_db)
    with goals_db.engine.begin() as conn:
        conn.execute(update(goals_db.outbox).values(sent_at=func.now() - func.make_interval(
            0, 0, 0, 1)))
    settings = Settings.from_env("goals", outbox_retention_s=3600)
    OutboxRelay(settings, goals_db).prune()
    with goals_db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(goals_db.outbox)).scalar_one() == 0


@contextmanager
def database_behind_a_proxy(settings: Settings) -> Iterator[tuple[TcpProxy, Database]]:
    """The goals schema reached through a cable the test can pull."""
    url = make_url(settings.database_url)
    proxy = TcpProxy(url.port or 5432, url.host or "127.0.0.1")
    db = Database(url.set(port=proxy.port).render_as_string(hide_password=False), "goals")
    try:
        yield proxy, db
    finally:
        proxy.close()
        db.dispose()


def _record(db: Database, e: Event) -> str:
    with UnitOfWork(db, source="/tests") as uow:
        recorded = uow.publish(e.type, e.data)
        uow.commit()
    return recorded.id


def _mark_all_sent(db: Database) -> None:
    """Earlier tests' events are not this test's business."""
    with db.engine.begin() as conn:
        conn.execute(update(db.outbox).where(db.outbox.c.sent_at.is_(None))
                     .values(sent_at=func.now()))


def test_dead_letters_can_be_listed_and_replayed_once_the_cause_is_fixed(
        namespace: str, running: Running, dbs: Any, infrastructure: dict[str, str]) -> None:
    from shared import dlq

    settings = probe_settings(namespace)
    broken = threading.Event()
    broken.set()
    applied: list[str] = []

    def handler(uow: UnitOfWork, e: Event) -> None:
        if broken.is_set():
            raise RuntimeError("bug in handler")
        applied.append(e.id)

    start_consumer(running, settings, dbs("goals"), {"goals.goal.completed": each(handler)})
    e = completed()
    publish_event(infrastructure["amqp_url"], namespace, e)
    dead = bus.Names(namespace).dead_queue("probe")
    wait_for(lambda: queue_depth(infrastructure["amqp_url"], dead) == 1, timeout=15,
             message="parked")
    listed = dlq.list_dead(settings, 10)
    assert [(row["id"], row["attempts"]) for row in listed] == [(e.id, settings.max_attempts)]
    assert queue_depth(infrastructure["amqp_url"], dead) == 1  # listing does not consume
    broken.clear()  # the fix is deployed
    assert dlq.replay(settings, None) == 1
    wait_for(lambda: applied == [e.id], message="replayed event applied")
    assert queue_depth(infrastructure["amqp_url"], dead) == 0


def test_a_consumer_whose_queue_vanished_reconnects_and_declares_it_again(
        namespace: str, running: Running, dbs: Any, infrastructure: dict[str, str]) -> None:
    """What a broker reset looks like to a consumer: its topology is gone; it rebuilds it."""
    settings = probe_settings(namespace)
    got: list[str] = []
    start_consumer(running, settings, dbs("goals"),
                   {"goals.goal.completed": each(lambda uow, e: got.append(e.id))})
    names = bus.Names(namespace)
    amqp = infrastructure["amqp_url"]
    with Connection(amqp) as conn:
        channel = conn.channel()
        channel.queue_delete(names.queue("probe"))
        channel.exchange_delete(names.events)
    wait_for(lambda: queue_exists(amqp, names.queue("probe")), timeout=15,
             message="queue declared again")
    e = completed()
    publish_event(amqp, namespace, e)  # the exchange and binding are back too
    wait_for(lambda: got == [e.id], message="event consumed after the rebuild")


def test_a_database_outage_holds_the_batch_until_the_database_is_back(
        namespace: str, running: Running, infrastructure: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    settings = probe_settings(namespace)
    with database_behind_a_proxy(settings) as (proxy, db):
        applied: list[str] = []

        def record(uow: UnitOfWork, e: Event) -> None:
            uow.session.execute(select(func.now()))  # a real statement in the transaction
            applied.append(e.id)

        start_consumer(running, settings, db, {"goals.goal.completed": each(record)})
        proxy.cut()
        e = completed()
        publish_event(infrastructure["amqp_url"], namespace, e)
        names = bus.Names(namespace)
        wait_for(lambda: queue_depth(infrastructure["amqp_url"], names.queue("probe")) == 0,
                 message="the consumer holds the delivery")
        assert applied == []
        proxy.restore()
        wait_for(lambda: applied == [e.id], timeout=20, message="applied once the DB is back")
        assert queue_depth(infrastructure["amqp_url"], names.dead_queue("probe")) == 0
        messages = [r.getMessage() for r in caplog.records]
        # It waited for the database and never spent one of the event's attempts.
        assert "database unavailable, holding batch" in messages
        assert "handler failed" not in messages
        running.close()


def test_the_relay_waits_out_a_database_outage_and_then_delivers(
        namespace: str, running: Running, dbs: Any, infrastructure: dict[str, str]) -> None:
    settings = probe_settings(namespace)
    got: list[str] = []
    start_consumer(running, settings, dbs("goals"),
                   {"goals.goal.completed": each(lambda uow, e: got.append(e.id))})
    with database_behind_a_proxy(settings) as (proxy, proxied):
        _mark_all_sent(dbs("goals"))
        relay = OutboxRelay(Settings.from_env("goals", namespace=namespace), proxied,
                            catch_up_s=1.0)
        running.start(relay.run)
        first = _record(dbs("goals"), completed())
        wait_for(lambda: got == [first], message="relayed before the outage")
        proxy.cut()
        during = _record(dbs("goals"), completed())  # committed while the relay is cut off
        proxy.restore()
        wait_for(lambda: got == [first, during], timeout=30,
                 message="relayed after the database came back")
        running.close()
