"""A worker's health and metrics on its own port (shared.health): a real worker process
stopped with SIGSTOP goes red and comes back, a loop stuck in a handler is named, and the
counters follow what the consumer did."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from shared import bus, health
from shared.config import Settings
from shared.consumer import EventConsumer, each
from shared.db import Database, UnitOfWork
from shared.events import Event, GoalCompleted
from shared.outbox import OutboxRelay
from tests.helpers import LOGS, PYTHON, ServiceProcess, event, new_user_id, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe(url: str, timeout: float = 1.0) -> tuple[int, dict[str, Any]]:
    """(status, JSON body); (0, {}) when nothing answers within `timeout`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


@pytest.fixture
def goals_worker(database: str, tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    port = free_port()
    env = {**os.environ, "GOALS_WORKER_PORT": str(port), "WORKER_STALL_SECONDS": "3"}
    proc = ServiceProcess([PYTHON, "-m", "services.goals.worker"], env,
                          LOGS / "goals-worker-health.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: probe(f"{url}/readyz")[0] == 200 or not proc.alive(), timeout=30,
                 message="the worker ready")
        assert proc.alive(), proc.log_tail()
        yield proc, url
    finally:
        with_signal(proc, signal.SIGCONT)
        proc.terminate()


def with_signal(proc: ServiceProcess, signum: int) -> None:
    if proc.alive():
        os.kill(proc.pid, signum)


def test_a_ready_worker_reports_its_loops_and_its_backlog(
        goals_worker: tuple[ServiceProcess, str]) -> None:
    _proc, url = goals_worker
    status, alive = probe(f"{url}/healthz")
    assert status == 200 and alive["status"] == "ok"
    assert set(alive["last_beat_s"]) == {"outbox-relay", "consumer", "resync-answers"}
    status, ready = probe(f"{url}/readyz")
    assert status == 200 and ready["not_connected"] == {}
    assert ready["backlog"]["outbox_pending"] >= 0
    assert "outbox_oldest_age_seconds" in ready["backlog"]
    assert ready["backlog"]["resync_answers_open"] >= 0
    with urllib.request.urlopen(f"{url}/metrics", timeout=2) as response:  # noqa: S310
        text = response.read().decode()
    for name in ("worker_outbox_pending", "worker_relay_publish_seconds_bucket",
                 "worker_consumer_batch_seconds_count", "worker_relay_batches_total"):
        assert name in text, name


def test_a_stopped_worker_goes_red_and_comes_back_green(
        goals_worker: tuple[ServiceProcess, str]) -> None:
    proc, url = goals_worker
    os.kill(proc.pid, signal.SIGSTOP)
    # A stopped process answers nothing: the probe's timeout is the red.
    wait_for(lambda: probe(f"{url}/healthz", timeout=0.5)[0] != 200, timeout=5,
             message="health red while stopped")
    os.kill(proc.pid, signal.SIGCONT)
    wait_for(lambda: probe(f"{url}/healthz")[0] == 200, timeout=10,
             message="health green again after SIGCONT")
    wait_for(lambda: probe(f"{url}/readyz")[0] == 200, timeout=10,
             message="ready again after SIGCONT")


def counted(type_: str, outcome: str) -> float:
    value = health.REGISTRY.get_sample_value("worker_events_total",
                                             {"type": type_, "outcome": outcome})
    return value or 0.0


@pytest.fixture
def served() -> Iterator[Callable[[health.Vitals], str]]:
    servers = []

    def serve(vitals: health.Vitals) -> str:
        server = health.serve(vitals, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_consumer_stuck_in_a_handler_is_named_and_its_events_are_counted(
        database: str, dbs: Callable[[str], Database], settings: Callable[..., Settings],
        served: Callable[[health.Vitals], str]) -> None:
    namespace = f"health{new_user_id()[:8]}"
    cfg = settings("goals", namespace=namespace)
    release, inside = threading.Event(), threading.Event()

    def stuck(_uow: UnitOfWork, _event: Event[GoalCompleted]) -> None:
        inside.set()
        release.wait(30)

    vitals = health.Vitals(stall_after_s=1.0)
    url = served(vitals)
    consumer = EventConsumer(cfg, dbs("goals"), {"goals.goal.completed": each(stuck)},
                             pulse=vitals.pulse("consumer"))
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    names = bus.Names(namespace)
    try:
        wait_for(lambda: probe(f"{url}/readyz")[0] == 200, timeout=15,
                 message="the consumer connected")
        before = counted("goals.goal.completed", "applied")
        with bus.connect(cfg.amqp_url) as conn:
            bus.ConfirmingPublisher(conn, names=names).publish([bus.Outgoing(
                exchange=names.events, routing_key="goals.goal.completed",
                body=bus.encode(event(
                    "goals.goal.completed", goal_id=new_user_id(), user_id=new_user_id(),
                    version=2, period="DAILY", completed_at=datetime.now(UTC)).to_dict()),
                message_id=new_user_id(), headers={})])
        wait_for(inside.is_set, timeout=10, message="the handler entered")
        wait_for(lambda: probe(f"{url}/healthz")[0] == 503, timeout=5,
                 message="healthz red for the stuck loop")
        assert probe(f"{url}/healthz")[1]["stalled"] == ["consumer"]  # still stuck
        release.set()
        wait_for(lambda: probe(f"{url}/healthz")[0] == 200, timeout=10,
                 message="healthz green once the handler returned")
        wait_for(lambda: counted("goals.goal.completed", "applied") == before + 1, timeout=10,
                 message="the applied event counted by type")
    finally:
        release.set()
        stop.set()
        thread.join(30)
        bus.delete_namespace(cfg.amqp_url, names, ["goals"], cfg.retry_delays_ms)


def test_a_relay_that_cannot_reach_the_database_is_not_ready(
        settings: Callable[..., Settings], served: Callable[[health.Vitals], str]) -> None:
    cfg = settings("goals", namespace=f"health{new_user_id()[:8]}")
    # Port 1 on the loopback: refused at once, like a database that is down.
    nowhere = Database(make_url(cfg.database_url).set(host="127.0.0.1", port=1)
                       .render_as_string(hide_password=False), "goals")
    vitals = health.Vitals(stall_after_s=5.0)
    relay = OutboxRelay(cfg, nowhere, pulse=vitals.pulse("outbox-relay"))
    vitals.backlogs.append(relay.backlog)
    url = served(vitals)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: probe(f"{url}/readyz", timeout=5)[1].get("not_connected"),
                 timeout=10, message="readyz naming the relay")
        status, body = probe(f"{url}/readyz", timeout=5)  # the database is still away
        assert status == 503
        assert "outbox-relay" in body["not_connected"]
        assert probe(f"{url}/healthz")[0] == 200, "backing off is alive, only not ready"
    finally:
        stop.set()
        thread.join(30)
        nowhere.dispose()
