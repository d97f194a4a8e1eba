"""A resync's rules, applied without a broker: snapshots obey versions, deletion marks,
tombstones and the inbox as live events do; the completion sweeps only what nothing
confirmed since the request; the producer answers in keyset batches, addressed to the asker.
(tests/integration/test_resync.py runs it all through the real workers.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text

from services.diary.handlers import HANDLERS as DIARY_HANDLERS
from services.diary.models import Author
from services.goals.handlers import HANDLERS as GOALS_HANDLERS
from services.goals.usecases import goal_snapshots
from services.stories.handlers import HANDLERS as STORIES_HANDLERS
from services.stories.models import GoalView, PostView
from shared import resync
from shared.consumer import EventConsumer
from shared.db import Database
from shared.events import Event
from shared.ids import new_id
from tests.helpers import apply_events, event, make_consumer, new_user_id

START = datetime(2026, 11, 23, tzinfo=UTC)
DEADLINE = datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC)


@pytest.fixture
def stories(dbs: Callable[[str], Database]) -> Database:
    return dbs("stories")


@pytest.fixture
def consumer(settings: Any, stories: Database) -> EventConsumer:
    return make_consumer(settings("stories"), stories, STORIES_HANDLERS)


@pytest.fixture
def outbox_rows(dbs: Callable[[str], Database]) -> Iterator[list[tuple[str, str]]]:
    """(service, event id) of outbox rows a test wrote without a relay: removed after it,
    so no later test's relay delivers them."""
    rows: list[tuple[str, str]] = []
    yield rows
    for service, event_id in rows:
        db = dbs(service)
        with db.engine.begin() as conn:
            conn.execute(delete(db.outbox).where(db.outbox.c.event_id == event_id))


def goal(type_: str, goal_id: str, user_id: str, version: int, **fields: Any) -> Event:
    data: dict[str, Any] = {"goal_id": goal_id, "user_id": user_id, "version": version,
                            "period": "WEEKLY", "title": "Ship it", "status": "ACTIVE",
                            "start_date": START, "deadline": DEADLINE, "completed_at": None}
    return event(type_, **{**data, **fields})


def view(db: Database, model: Any, key: str) -> Any:
    with db.sessions() as session:
        return session.get(model, key)


def asked(db: Database, request_id: str) -> Any:
    with db.engine.connect() as conn:
        return conn.execute(select(db.resyncs).where(
            db.resyncs.c.request_id == request_id)).one()


def completion(producer: str, request_id: str, count: int) -> Event:
    return event(resync.completed_type(producer), request_id=request_id, asker="stories",
                 count=count)


def test_a_goal_snapshot_applies_like_its_live_event(consumer: EventConsumer,
                                                     stories: Database) -> None:
    goal_id, user_id = new_id(), new_user_id()
    apply_events(consumer, goal("goals.goal.created", goal_id, user_id, 1))
    apply_events(consumer, goal("goals.goal.snapshot", goal_id, user_id, 3, title="Ship"))
    assert (view(stories, GoalView, goal_id).title, view(stories, GoalView, goal_id).version) \
        == ("Ship", 3)
    # older, equal (another title at the same version) and a duplicate: nothing moves
    apply_events(consumer, goal("goals.goal.snapshot", goal_id, user_id, 2, title="Old"))
    apply_events(consumer, goal("goals.goal.snapshot", goal_id, user_id, 3, title="Same"))
    newer = goal("goals.goal.completed", goal_id, user_id, 4, completed_at=START)
    apply_events(consumer, newer, newer)
    held = view(stories, GoalView, goal_id)
    assert (held.title, held.status, held.version) == ("Ship", "COMPLETED", 4)


def test_a_snapshot_brings_back_neither_a_deleted_goal_nor_a_deleted_user(
        consumer: EventConsumer, stories: Database) -> None:
    deleted_goal, user_id = new_id(), new_user_id()
    apply_events(consumer, goal("goals.goal.created", deleted_goal, user_id, 1))
    apply_events(consumer, goal("goals.goal.deleted", deleted_goal, user_id, 2))
    apply_events(consumer, goal("goals.goal.snapshot", deleted_goal, user_id, 1))
    assert view(stories, GoalView, deleted_goal) is None

    gone_user, their_goal, post_id = new_user_id(), new_id(), new_id()
    apply_events(consumer, event("auth.user.deleted", user_id=gone_user, deleted_at=START))
    apply_events(consumer, goal("goals.goal.snapshot", their_goal, gone_user, 5),
                 event("diary.post.snapshot", post_id=post_id, author_id=gone_user,
                       title="Mine", published_at=START, version=2),
                 event("auth.user.snapshot", user_id=gone_user, name="Gone"))
    assert view(stories, GoalView, their_goal) is None
    assert view(stories, PostView, post_id) is None
    with stories.sessions() as session:
        assert session.execute(text("SELECT count(*) FROM profiles WHERE user_id = :u"),
                               {"u": gone_user}).scalar() == 0


def test_a_batch_of_goal_snapshots_applies_each_as_it_would_alone(
        consumer: EventConsumer, stories: Database) -> None:
    user_id = new_user_id()
    overtaken, twice, deleted = new_id(), new_id(), new_id()
    apply_events(consumer, goal("goals.goal.completed", overtaken, user_id, 3,
                                completed_at=START),
                 goal("goals.goal.created", deleted, user_id, 1),
                 goal("goals.goal.deleted", deleted, user_id, 2))
    assert view(stories, GoalView, overtaken).title is None  # the status event came first
    apply_events(consumer,  # one delivered batch: one call of the batched handler
                 goal("goals.goal.snapshot", overtaken, user_id, 3, title="Filled",
                      status="COMPLETED", completed_at=START),
                 goal("goals.goal.snapshot", twice, user_id, 2, title="Second"),
                 goal("goals.goal.snapshot", twice, user_id, 1, title="First"),
                 goal("goals.goal.snapshot", deleted, user_id, 1))
    filled = view(stories, GoalView, overtaken)
    assert (filled.title, filled.status, filled.version, filled.start_date) == (
        "Filled", "COMPLETED", 3, START)
    assert (view(stories, GoalView, twice).title, view(stories, GoalView, twice).version) \
        == ("Second", 2)
    assert view(stories, GoalView, deleted) is None
    assert all(view(stories, GoalView, g).synced_at is not None for g in (overtaken, twice))


def test_the_completion_removes_only_what_nothing_confirmed_since_the_request(
        consumer: EventConsumer, stories: Database,
        outbox_rows: list[tuple[str, str]]) -> None:
    user_id = new_user_id()
    stale, kept_by_snapshot, created_live = new_id(), new_id(), new_id()
    for goal_id in (stale, kept_by_snapshot):
        apply_events(consumer, goal("goals.goal.created", goal_id, user_id, 1))
    with stories.engine.begin() as conn:  # as if applied long before the resync
        conn.execute(text("UPDATE goal_views SET synced_at = now() - interval '1 day' "
                          "WHERE user_id = :u"), {"u": user_id})

    request_id = resync.request(stories, asker="stories", producer="goals")
    outbox_rows.append(("stories", _last_outbox_event(stories)))
    # the snapshot of a goal whose version it already holds, and a live creation
    apply_events(consumer, goal("goals.goal.snapshot", kept_by_snapshot, user_id, 1),
                 goal("goals.goal.created", created_live, user_id, 1))
    apply_events(consumer, completion("goals", request_id, 1))

    assert view(stories, GoalView, stale) is None
    assert view(stories, GoalView, kept_by_snapshot) is not None
    assert view(stories, GoalView, created_live) is not None
    done = asked(stories, request_id)
    assert done.completed_at is not None and done.sent == 1 and done.removed >= 1

    # The same completion again, or one for no request, changes nothing.
    apply_events(consumer, goal("goals.goal.created", stale, user_id, 1))
    with stories.engine.begin() as conn:
        conn.execute(text("UPDATE goal_views SET synced_at = now() - interval '1 day' "
                          "WHERE goal_id = :g"), {"g": stale})
    apply_events(consumer, completion("goals", request_id, 1),
                 completion("goals", new_id(), 0))
    assert view(stories, GoalView, stale) is not None


def _last_outbox_event(db: Database) -> str:
    with db.engine.connect() as conn:
        return str(conn.execute(select(db.outbox.c.event_id)
                                .order_by(db.outbox.c.seq.desc()).limit(1)).scalar_one())


def test_the_producer_answers_every_goal_in_batches_addressed_to_the_asker(
        settings: Any, dbs: Callable[[str], Database],
        outbox_rows: list[tuple[str, str]]) -> None:
    goals = dbs("goals")
    user_id = new_user_id()
    with goals.engine.begin() as conn:  # a few goals of our own among the suite's
        conn.execute(text("""
            INSERT INTO goals (id, title, period, status, start_date, deadline, user_id,
                               version, created_at, updated_at)
            SELECT 'rs' || g || :u, 'Goal ' || g, 'WEEKLY', 'ACTIVE', now(),
                   now() + interval '7 days', :u, 1, now(), now()
            FROM generate_series(1, 23) AS g"""), {"u": user_id})
    with goals.engine.connect() as conn:
        expected = sorted(conn.execute(text("SELECT id FROM goals")).scalars())
    request_id = new_id()
    answering = make_consumer(settings("goals"), goals, GOALS_HANDLERS)
    ask = event("stories.resync.requested", request_id=request_id, asker="stories",
                producer="goals")
    apply_events(answering, ask, ask,  # a duplicate, and a request meant for diary
                 event("stories.resync.requested", request_id=new_id(), asker="stories",
                       producer="diary"))

    answers = resync.Answerer("goals", resync.Source("goals.goal.snapshot", goal_snapshots),
                              batch=7)
    steps = 0
    while answers.step(goals):
        steps += 1
    with goals.engine.connect() as conn:
        rows = conn.execute(
            select(goals.outbox.c.event_id, goals.outbox.c.type, goals.outbox.c.routing_key,
                   goals.outbox.c.payload)
            .where(goals.outbox.c.routing_key.like("to.stories.%"),
                   goals.outbox.c.sent_at.is_(None))
            .order_by(goals.outbox.c.seq)).all()
    outbox_rows.extend(("goals", r.event_id) for r in rows)
    snapshots = [r for r in rows if r.type == "goals.goal.snapshot"]
    assert steps == len(expected) // 7 + 1
    assert sorted(r.payload["data"]["goal_id"] for r in snapshots) == expected
    assert {r.routing_key for r in snapshots} == {"to.stories.goals.goal.snapshot"}
    last = rows[-1]
    assert (last.type, last.routing_key, last.payload["data"]) == (
        "goals.resync.completed", "to.stories.goals.resync.completed",
        {"request_id": request_id, "asker": "stories", "count": len(expected)})
    assert asked(goals, request_id).completed_at is not None
    assert not answers.step(goals)  # nothing left to answer


def test_diary_applies_an_author_snapshot_like_a_profile_and_sweeps_its_authors(
        settings: Any, dbs: Callable[[str], Database],
        outbox_rows: list[tuple[str, str]]) -> None:
    diary = dbs("diary")
    consumer = make_consumer(settings("diary"), diary, DIARY_HANDLERS)
    user_id, stale = new_user_id(), new_user_id()
    apply_events(consumer, event("auth.user.updated", user_id=user_id, name="Newer"),
                 event("auth.user.updated", user_id=stale, name="Gone from auth"))
    with diary.engine.begin() as conn:
        conn.execute(text("UPDATE authors SET synced_at = now() - interval '1 day' "
                          "WHERE user_id = :u"), {"u": stale})
    request_id = resync.request(diary, asker="diary", producer="auth")
    outbox_rows.append(("diary", _last_outbox_event(diary)))
    older = event("auth.user.snapshot", user_id=user_id, name="Older")
    older = replace(older, time=older.time - timedelta(hours=1))
    apply_events(consumer, older)
    apply_events(consumer, event("auth.resync.completed", request_id=request_id,
                                 asker="diary", count=1))
    kept = view(diary, Author, user_id)
    assert kept is not None and kept.name == "Newer"  # confirmed, not overwritten
    assert view(diary, Author, stale) is None
    with diary.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(diary.resyncs).where(
            diary.resyncs.c.request_id == request_id,
            diary.resyncs.c.completed_at.is_not(None))).scalar() == 1


def test_a_service_asks_only_a_producer_it_keeps_a_read_model_of(
        dbs: Callable[[str], Database]) -> None:
    with pytest.raises(ValueError, match="no read model"):
        resync.request(dbs("diary"), asker="diary", producer="goals")


def test_the_command_asks_and_shows_the_resyncs_of_a_service(
        dbs: Callable[[str], Database], outbox_rows: list[tuple[str, str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    diary = dbs("diary")
    assert resync.main(["request", "--service", "diary", "--from", "auth"]) == 0
    outbox_rows.append(("diary", _last_outbox_event(diary)))
    request_id = capsys.readouterr().out.split()[1].rstrip(":")
    assert asked(diary, request_id).producer == "auth"
    assert resync.main(["status", "--service", "diary"]) == 0
    shown = [line for line in capsys.readouterr().out.splitlines() if request_id in line]
    assert shown == [shown[0]] and shown[0].endswith("in progress")
    with pytest.raises(SystemExit):  # diary keeps nothing of goals'
        resync.main(["request", "--service", "diary", "--from", "goals"])


def test_only_the_askers_queue_binds_what_is_addressed_to_it() -> None:
    from shared import bus

    names = bus.Names("t")
    for service, handlers in (("stories", STORIES_HANDLERS), ("diary", DIARY_HANDLERS),
                              ("goals", GOALS_HANDLERS)):
        (queue, *_) = bus.service_queues(names, service, handlers, [])
        keys = {b.routing_key for b in queue.bindings}
        assert not any(k.endswith(".snapshot") for k in keys)
        addressed = {k for k in keys if k.startswith("to.")}
        wants = any(bus.is_addressed(t) for t in handlers)
        assert addressed == ({f"to.{service}.#"} if wants else set())


