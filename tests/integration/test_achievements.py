"""The client-named flows across services, with real worker processes:
goal completed -> achievement score; user deleted -> every goal gone, nothing comes back."""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kombu import Connection
from sqlalchemy import func, select, text

from shared import bus
from shared.config import SERVICES
from tests.conftest import migrated_services
from tests.helpers import (
    ServiceProcess,
    TcpProxy,
    event,
    start_worker,
    wait_for,
)

pytestmark = pytest.mark.skipif("auth" not in migrated_services(), reason="auth not built yet")


class Workers:
    def __init__(self, amqp_url: str) -> None:
        port = Connection(amqp_url).port or 5672
        self.proxy = TcpProxy(port)
        self.proxied_url = amqp_url.replace(f":{port}/", f":{self.proxy.port}/")
        self.amqp_url = amqp_url
        self.procs: dict[str, ServiceProcess] = {}

    def start(self, service: str) -> ServiceProcess:
        env = dict(os.environ)
        if service == "goals":  # goals reaches the broker through a cable we can pull
            env["AMQP_URL"] = self.proxied_url
        proc = self.procs[service] = start_worker(service, env, amqp_url=self.amqp_url)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        self.proxy.close()


@pytest.fixture(scope="module")
def workers(infrastructure: dict[str, str]) -> Iterator[Workers]:
    w = Workers(infrastructure["amqp_url"])
    for service in migrated_services():
        if service in SERVICES:
            w.start(service)
    yield w
    w.stop_all()


@pytest.fixture
def member(client: Callable[[str], Any], auth_header: Callable[[str], dict[str, str]]
           ) -> tuple[str, dict[str, str]]:
    from shared.ids import new_id

    email = f"{new_id()}@example.com"
    response = client("auth").post("/auth/register", json={
        "email": email, "password": "a long enough passphrase 42", "name": "Ada"})
    assert response.status_code == 201, response.json
    user_id = response.json["id"]
    return user_id, auth_header(user_id)


def score(client: Callable[[str], Any], headers: dict[str, str]) -> int:
    return int(client("auth").get("/auth/me", headers=headers).json["achievementScore"])


def new_goal(client: Callable[[str], Any], headers: dict[str, str], period: str = "DAILY"
             ) -> str:
    response = client("goals").post("/goals", json={"title": "Ship", "period": period},
                                    headers=headers)
    assert response.status_code == 201
    return str(response.json["id"])


def test_completing_a_goal_raises_the_score_once_and_reopening_withdraws_it(
        workers: Workers, client: Any, member: Any) -> None:
    _, headers = member
    goals = client("goals")
    goal_id = new_goal(client, headers, "WEEKLY")
    goals.post(f"/goals/{goal_id}/complete", headers=headers)
    goals.post(f"/goals/{goal_id}/complete", headers=headers)
    wait_for(lambda: score(client, headers) == 5, message="weekly award")
    goals.post(f"/goals/{goal_id}/reopen", headers=headers)
    wait_for(lambda: score(client, headers) == 0, message="award withdrawn on reopen")
    goals.post(f"/goals/{goal_id}/complete", headers=headers)
    wait_for(lambda: score(client, headers) == 5, message="awarded again")
    goals.delete(f"/goals/{goal_id}", headers=headers)
    wait_for(lambda: score(client, headers) == 0, message="award withdrawn on delete")


def test_the_same_event_delivered_twice_awards_once(workers: Workers, client: Any,
                                                   member: Any, dbs: Any) -> None:
    _, headers = member
    goal_id = new_goal(client, headers, "MONTHLY")
    client("goals").post(f"/goals/{goal_id}/complete", headers=headers)
    wait_for(lambda: score(client, headers) == 20, message="monthly award")
    goals_db = dbs("goals")
    with goals_db.engine.connect() as conn:
        payload = conn.execute(select(goals_db.outbox.c.payload).where(
            goals_db.outbox.c.type == "goals.goal.completed",
            goals_db.outbox.c.payload["data"]["goal_id"].astext == goal_id)).scalar_one()
    names = bus.Names(os.environ["EVENT_NAMESPACE"])
    with Connection(workers.amqp_url) as conn:
        publisher = bus.ConfirmingPublisher(conn, names=names)
        duplicate = bus.Outgoing(exchange=names.events, routing_key="goals.goal.completed",
                                 body=bus.encode(payload), message_id=payload["id"], headers={})
        publisher.publish([duplicate, duplicate])
    # A later completion is applied after the duplicates (one queue, in order).
    sentinel = new_goal(client, headers, "DAILY")
    client("goals").post(f"/goals/{sentinel}/complete", headers=headers)
    wait_for(lambda: score(client, headers) >= 21, message="sentinel applied")
    assert score(client, headers) == 21


def test_the_award_arrives_after_a_broker_outage(workers: Workers, client: Any,
                                                 member: Any, dbs: Any) -> None:
    _, headers = member
    goal_id = new_goal(client, headers, "QUARTERLY")
    workers.proxy.cut()
    try:
        client("goals").post(f"/goals/{goal_id}/complete", headers=headers)
        goals_db = dbs("goals")
        with goals_db.engine.connect() as conn:
            pending = conn.execute(select(func.count()).select_from(goals_db.outbox).where(
                goals_db.outbox.c.sent_at.is_(None))).scalar_one()
        assert pending >= 1 and score(client, headers) == 0
    finally:
        workers.proxy.restore()
    wait_for(lambda: score(client, headers) == 50, timeout=30, message="award after outage")


def test_a_worker_killed_mid_stream_applies_every_award_exactly_once(
        workers: Workers, client: Any, member: Any) -> None:
    _, headers = member
    goals = client("goals")
    ids = [new_goal(client, headers) for _ in range(150)]
    workers.procs["auth"].kill()  # the backlog builds while auth is down
    for goal_id in ids:
        goals.post(f"/goals/{goal_id}/complete", headers=headers)
    proc = workers.start("auth")
    wait_for(lambda: score(client, headers) > 0, timeout=30, message="some applied")
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream, between effect and ack for some
    proc.proc.wait(10)  # type: ignore[union-attr]
    workers.start("auth")
    wait_for(lambda: score(client, headers) == 150, timeout=60, message="all 150 applied")
    assert score(client, headers) == 150


def test_a_worker_stopped_with_sigterm_exits_cleanly_and_loses_nothing(
        workers: Workers, client: Any, member: Any) -> None:
    _, headers = member
    goals = client("goals")
    ids = [new_goal(client, headers) for _ in range(100)]
    workers.procs["auth"].kill()
    for goal_id in ids:
        goals.post(f"/goals/{goal_id}/complete", headers=headers)
    proc = workers.start("auth")
    wait_for(lambda: score(client, headers) > 0, timeout=30, message="some applied")
    assert proc.terminate(timeout=20) == 0, proc.log_tail()  # graceful: batch done, acked
    workers.start("auth")
    wait_for(lambda: score(client, headers) == 100, timeout=60, message="all 100 applied")


def test_deleting_an_account_removes_every_goal_and_late_events_bring_nothing_back(
        workers: Workers, client: Any, member: Any, dbs: Any) -> None:
    user_id, headers = member
    goal_ids = [new_goal(client, headers) for _ in range(3)]
    assert client("auth").delete("/auth/me", headers=headers).status_code == 204
    goals_db = dbs("goals")

    def goals_left() -> int:
        with goals_db.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM goals.goals WHERE user_id = :u"),
                                    {"u": user_id}).scalar_one())

    wait_for(lambda: goals_left() == 0, message="goals deleted")
    # A completion about that user, delivered late (e.g. committed just before the deletion).
    late = event("goals.goal.completed", goal_id=goal_ids[0], user_id=user_id, version=9,
                 period="DAILY", completed_at=datetime.now(UTC))
    created = event("goals.goal.created", goal_id=goal_ids[1], user_id=user_id, version=9,
                    title="zombie", period="DAILY", status="ACTIVE",
                    start_date=late.data.completed_at, deadline=late.data.completed_at)
    names = bus.Names(os.environ["EVENT_NAMESPACE"])
    with Connection(workers.amqp_url) as conn:
        bus.ConfirmingPublisher(conn, names=names).publish([
            bus.Outgoing(exchange=names.events, routing_key=e.type, body=bus.encode(e.to_dict()),
                         message_id=e.id, headers={}) for e in (late, created)])
    for service in ("auth", "stories"):
        if service in migrated_services():
            wait_for(functools.partial(_in_inbox, dbs(service), late.id),
                     message=f"{service} saw it")
    with dbs("auth").engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM auth.achievement_awards "
                                 "WHERE user_id = :u"), {"u": user_id}).scalar_one() == 0
    if "stories" in migrated_services():
        with dbs("stories").engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM stories.goal_views "
                                     "WHERE user_id = :u"), {"u": user_id}).scalar_one() == 0
    assert goals_left() == 0
    with dbs("goals").engine.connect() as conn:
        assert conn.execute(text("SELECT 1 FROM goals.deleted_user WHERE user_id = :u"),
                            {"u": user_id}).first() is not None
    # Every token of the deleted user stops working in goals too.
    assert client("goals").get("/goals", headers=headers).status_code == 401


def _in_inbox(db: Any, event_id: str) -> bool:
    with db.engine.connect() as conn:
        return conn.execute(select(db.inbox.c.event_id).where(
            db.inbox.c.event_id == event_id)).first() is not None
