"""Two workers applying two events of one post (or goal) at once: the later version wins.

Each case holds the first event's transaction open, starts the second in another thread,
sees it wait for the first (a lock, not luck), then commits the first."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from services.stories import readmodels
from services.stories.models import GoalView, PostView
from shared.db import Database
from shared.events import GoalSnapshot, PostChanged
from shared.ids import new_id
from tests.helpers import new_user_id, wait_for


@pytest.fixture
def db(dbs: Callable[[str], Database]) -> Database:
    return dbs("stories")


def waiting_for_a_lock(db: Database, pid: int) -> bool:
    with db.engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = :pid AND NOT granted)"),
            {"pid": pid}).scalar())


def race(db: Database, first: Callable[[Any], None], second: Callable[[Any], None]) -> None:
    """`first` applied and left uncommitted; `second` must wait for it."""
    pid: list[int] = []
    errors: list[BaseException] = []
    with db.sessions() as holding:
        first(holding)

        def run() -> None:
            try:
                with db.sessions() as session:
                    pid.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
                    second(session)
                    session.commit()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        wait_for(lambda: pid and waiting_for_a_lock(db, pid[0]) or not thread.is_alive(),
                 message="the second event waiting for the first")
        assert thread.is_alive(), "the second event did not wait for the first"
        holding.commit()
    thread.join(10)
    assert not errors, errors


def post(post_id: str, author: str, version: int, title: str = "Week 48") -> PostChanged:
    return PostChanged(post_id=post_id, author_id=author, title=title,
                       published_at=datetime.now(UTC), version=version)


def test_an_unpublish_and_an_older_publish_at_once_leave_it_unpublished(db: Database) -> None:
    post_id, author = new_id(), new_user_id()
    race(db, lambda s: readmodels.forget_post(s, post=post(post_id, author, 2)),
         lambda s: readmodels.record_published_post(s, post=post(post_id, author, 1)))
    with db.sessions() as session:
        assert session.get(PostView, post_id) is None


def test_a_publish_and_an_older_unpublish_at_once_leave_it_published(db: Database) -> None:
    post_id, author = new_id(), new_user_id()
    race(db, lambda s: readmodels.record_published_post(s, post=post(post_id, author, 3, "New")),
         lambda s: readmodels.forget_post(s, post=post(post_id, author, 2)))
    with db.sessions() as session:
        view = session.get(PostView, post_id)
        assert view is not None and (view.title, view.version) == ("New", 3)


def test_a_goal_deleted_while_an_older_update_applies_stays_deleted(db: Database) -> None:
    goal_id, user_id = new_id(), new_user_id()
    start = datetime(2026, 11, 23, tzinfo=UTC)
    snapshot = GoalSnapshot(goal_id=goal_id, user_id=user_id, version=2, title="Old",
                            period="WEEKLY", status="ACTIVE", start_date=start,
                            deadline=start + timedelta(days=7))
    race(db, lambda s: readmodels.record_goal_deleted(s, goal_id=goal_id, user_id=user_id),
         lambda s: readmodels.record_goal(s, goal=snapshot))
    with db.sessions() as session:
        assert session.get(GoalView, goal_id) is None
