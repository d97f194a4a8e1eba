"""What auth does with other services' events: achievement awards and story counters.

Events go through the consumer's own `apply` (inbox, tombstones, savepoints), as a batch
delivered by RabbitMQ would; the last test sends them through a real worker process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.auth.achievements import POINTS_BY_PERIOD
from services.auth.handlers import HANDLERS
from services.auth.models import AchievementAward
from shared import bus
from shared.consumer import EventConsumer
from shared.db import Database
from shared.events import Event
from shared.ids import new_id
from tests.auth.support import load_user
from tests.helpers import PYTHON, ServiceProcess, apply_events, event, wait_for

NewUser = Callable[..., str]


def completed(user_id: str, goal_id: str, version: int, period: str = "WEEKLY") -> Event:
    return event("goals.goal.completed", goal_id=goal_id, user_id=user_id, version=version,
                 period=period, completed_at=datetime.now(UTC))


def withdrawn(user_id: str, goal_id: str, version: int, period: str = "WEEKLY",
              type_: str = "goals.goal.reopened") -> Event:
    return event(type_, goal_id=goal_id, user_id=user_id, version=version, period=period)


def generated(user_id: str, at: datetime) -> Event:
    return event("stories.story.generated", story_id=new_id(), user_id=user_id,
                 period=at.date().isoformat(), generated_at=at)


def score(db: Database, user_id: str) -> int:
    user = load_user(db, user_id)
    assert user is not None
    return user.achievement_score


# -- achievement awards --------------------------------------------------------------------


def test_completing_a_goal_awards_the_points_of_its_period(
        consumer: EventConsumer, db: Database, new_user: NewUser) -> None:
    user_id = new_user()

    apply_events(consumer, completed(user_id, new_id(), 2, "DAILY"),
                 completed(user_id, new_id(), 2, "YEARLY"))

    assert score(db, user_id) == POINTS_BY_PERIOD["DAILY"] + POINTS_BY_PERIOD["YEARLY"] == 101


def test_the_same_completion_delivered_twice_awards_once(
        consumer: EventConsumer, db: Database, new_user: NewUser) -> None:
    user_id = new_user()
    once = completed(user_id, new_id(), 2)

    apply_events(consumer, once)
    apply_events(consumer, once)  # redelivery: the inbox has it
    apply_events(consumer, completed(user_id, once.data.goal_id, 2))  # a duplicate event

    assert score(db, user_id) == POINTS_BY_PERIOD["WEEKLY"]


def test_reopening_a_goal_withdraws_its_award(
        consumer: EventConsumer, db: Database, new_user: NewUser) -> None:
    user_id, goal_id = new_user(), new_id()
    apply_events(consumer, completed(user_id, goal_id, 2, "MONTHLY"))
    assert score(db, user_id) == 20

    apply_events(consumer, withdrawn(user_id, goal_id, 3, "MONTHLY"))

    assert score(db, user_id) == 0


def test_deleting_a_completed_goal_withdraws_its_award(
        consumer: EventConsumer, db: Database, new_user: NewUser) -> None:
    user_id, goal_id = new_user(), new_id()
    apply_events(consumer, completed(user_id, goal_id, 2))

    apply_events(consumer, withdrawn(user_id, goal_id, 3, type_="goals.goal.deleted"))

    assert score(db, user_id) == 0


def test_completing_a_reopened_goal_again_awards_it_again(
        consumer: EventConsumer, db: Database, new_user: NewUser) -> None:
    user_id, goal_id = new_user(), new_id()

    apply_events(consumer, completed(user_id, goal_id, 2), withdrawn(user_id, goal_id, 3),
                 completed(user_id, goal_id, 4))

    assert score(db, user_id) == POINTS_BY_PERIOD["WEEKLY"]


def test_a_withdrawal_arriving_before_its_completion_leaves_no_award(
        consumer: EventConsumer, db: Database, new_user: NewUser) -> None:
    user_id, goal_id = new_user(), new_id()

    apply_events(consumer, withdrawn(user_id, goal_id, 3))
    apply_events(consumer, completed(user_id, goal_id, 2))  # older: it no longer stands

    assert score(db, user_id) == 0
    with db.sessions() as session:
        row = session.get(AchievementAward, goal_id)
        assert row is not None and row.version == 3 and row.awarded is False


def test_a_late_older_withdrawal_does_not_cancel_a_newer_completion(
        consumer: EventConsumer, db: Database, new_user: NewUser) -> None:
    user_id, goal_id = new_user(), new_id()

    apply_events(consumer, completed(user_id, goal_id, 4))
    apply_events(consumer, withdrawn(user_id, goal_id, 3), completed(user_id, goal_id, 2))

    assert score(db, user_id) == POINTS_BY_PERIOD["WEEKLY"]


def test_events_about_unknown_users_change_nothing(
        consumer: EventConsumer, db: Database) -> None:
    stranger, goal_id = new_id(), new_id()

    deliveries = apply_events(consumer, completed(stranger, goal_id, 2),
                              withdrawn(stranger, new_id(), 3),
                              generated(stranger, datetime.now(UTC)))

    assert [d.error for d in deliveries] == [None, None, None]
    with db.sessions() as session:
        assert session.get(AchievementAward, goal_id) is None


def test_events_after_a_deletion_are_ignored(
        api: Any, login: Callable[..., dict[str, Any]], consumer: EventConsumer,
        db: Database) -> None:
    body = login()
    user_id = body["user"]["id"]
    api.delete("/auth/me", headers={"Authorization": f"Bearer {body['accessToken']}"})

    deliveries = apply_events(consumer, completed(user_id, new_id(), 2))

    assert deliveries[0].error is None
    assert load_user(db, user_id) is None


# -- story generations ---------------------------------------------------------------------


def counters(db: Database, user_id: str) -> tuple[int, datetime | None]:
    user = load_user(db, user_id)
    assert user is not None
    return user.daily_generation_count, user.last_generation_date


def test_stories_of_one_day_are_counted(
        consumer: EventConsumer, db: Database, new_user: NewUser) -> None:
    user_id = new_user()
    morning = datetime(2026, 11, 24, 8, tzinfo=UTC)

    apply_events(consumer, generated(user_id, morning),
                 generated(user_id, morning + timedelta(hours=3)))

    assert counters(db, user_id) == (2, morning + timedelta(hours=3))


def test_a_story_of_a_new_day_starts_the_count_again(
        consumer: EventConsumer, db: Database, new_user: NewUser) -> None:
    user_id = new_user()
    day = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    apply_events(consumer, generated(user_id, day), generated(user_id, day))

    apply_events(consumer, generated(user_id, day + timedelta(hours=1)))

    assert counters(db, user_id) == (1, day + timedelta(hours=1))


def test_a_late_story_counts_for_its_own_day_only(
        consumer: EventConsumer, db: Database, new_user: NewUser) -> None:
    user_id = new_user()
    noon = datetime(2026, 11, 24, 12, tzinfo=UTC)
    apply_events(consumer, generated(user_id, noon))

    apply_events(consumer, generated(user_id, noon - timedelta(hours=2)))  # same day, late
    apply_events(consumer, generated(user_id, noon - timedelta(days=1)))  # a day gone by

    assert counters(db, user_id) == (2, noon)


# -- through a real worker -----------------------------------------------------------------


def test_a_completion_published_on_the_bus_raises_the_score_through_the_worker(
        settings: Callable[..., Any], db: Database, new_user: NewUser, tmp_path: Path) -> None:
    cfg = settings("auth")
    names = bus.Names(cfg.namespace)
    user_id = new_user()
    goal_events = [completed(user_id, new_id(), 2, "QUARTERLY"),
                   completed(user_id, new_id(), 2, "DAILY")]
    with bus.connect(cfg.amqp_url) as connection:
        # The worker declares the same topology; declaring first means nothing is lost
        # before it binds its queue.
        bus.declare(connection.channel(), names,
                    bus.service_queues(names, "auth", HANDLERS, cfg.retry_delays_ms))
        publisher = bus.ConfirmingPublisher(connection, names=names)
        outgoing = [bus.Outgoing(exchange=names.events, routing_key=e.type,
                                 body=bus.encode(e.to_dict()), message_id=e.id, headers={})
                    for e in goal_events]
        publisher.publish(outgoing + outgoing[:1])  # and one duplicate
        publisher.reset()

    worker = ServiceProcess([PYTHON, "-m", "services.auth.worker"], dict(os.environ),
                            tmp_path / "auth-worker.log").start()
    try:
        wait_for(lambda: score(db, user_id) == 51, timeout=20,
                 message=f"the worker to award 51 points\n{worker.log_tail()}")
    finally:
        assert worker.terminate() == 0, worker.log_tail()
    assert score(db, user_id) == 51
