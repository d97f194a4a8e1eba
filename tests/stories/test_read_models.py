"""Stories' read models, fed by events: profiles, goals (version-guarded) and posts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.stories.handlers import HANDLERS
from services.stories.models import GoalView, PostView, Profile, Story, WithdrawnPost
from shared.consumer import EventConsumer
from shared.db import Database
from shared.events import Event
from shared.ids import new_id
from tests.helpers import apply_events, event, make_consumer, new_user_id
from tests.stories.support import ready_story

START = datetime(2026, 11, 23, tzinfo=UTC)
DEADLINE = datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC)


@pytest.fixture
def db(dbs: Callable[[str], Database]) -> Database:
    return dbs("stories")


@pytest.fixture
def consumer(settings: Any, db: Database) -> EventConsumer:
    return make_consumer(settings("stories"), db, HANDLERS)


def goal_event(type_: str, goal_id: str, user_id: str, version: int, **fields: Any) -> Event:
    data: dict[str, Any] = {"goal_id": goal_id, "user_id": user_id, "version": version,
                            "period": "WEEKLY"}
    if type_ in ("goals.goal.created", "goals.goal.updated"):
        data.update(title="Ship it", status="ACTIVE", start_date=START, deadline=DEADLINE,
                    completed_at=None)
    return event(type_, **{**data, **fields})


def post_event(type_: str, post_id: str, author_id: str, title: str = "Week 48",
               version: int | None = None) -> Event:
    data: dict[str, Any] = {"post_id": post_id, "author_id": author_id, "title": title,
                            "published_at": datetime.now(UTC)}
    if version is not None:
        data["version"] = version
    return event(type_, **data)


def get(db: Database, model: Any, key: str) -> Any:
    with db.sessions() as session:
        return session.get(model, key)


def count(db: Database, model: Any, *where: Any) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_goal_events_keep_the_goal_view_current(consumer: EventConsumer, db: Database) -> None:
    goal_id, user_id = new_id(), new_user_id()
    done_at = datetime(2026, 11, 25, 12, tzinfo=UTC)
    apply_events(consumer, goal_event("goals.goal.created", goal_id, user_id, 1))
    apply_events(consumer, goal_event("goals.goal.updated", goal_id, user_id, 2, title="Ship"))
    apply_events(consumer, goal_event("goals.goal.completed", goal_id, user_id, 3,
                                      completed_at=done_at))
    view = get(db, GoalView, goal_id)
    assert (view.title, view.status, view.completed_at, view.version) == (
        "Ship", "COMPLETED", done_at, 3)
    apply_events(consumer, goal_event("goals.goal.reopened", goal_id, user_id, 4))
    view = get(db, GoalView, goal_id)
    assert (view.status, view.completed_at, view.version) == ("ACTIVE", None, 4)
    apply_events(consumer, goal_event("goals.goal.deleted", goal_id, user_id, 5))
    assert get(db, GoalView, goal_id) is None


def test_a_stale_goal_event_is_ignored(consumer: EventConsumer, db: Database) -> None:
    goal_id, user_id = new_id(), new_user_id()
    apply_events(consumer, goal_event("goals.goal.updated", goal_id, user_id, 3, title="New"))
    apply_events(consumer, goal_event("goals.goal.updated", goal_id, user_id, 2, title="Old"))
    apply_events(consumer, goal_event("goals.goal.created", goal_id, user_id, 1))
    apply_events(consumer, goal_event("goals.goal.completed", goal_id, user_id, 2,
                                      completed_at=datetime.now(UTC)))
    view = get(db, GoalView, goal_id)
    assert (view.title, view.status, view.completed_at, view.version) == (
        "New", "ACTIVE", None, 3)


def test_a_completion_that_overtakes_its_snapshot_is_kept_and_filled_in(
        consumer: EventConsumer, db: Database) -> None:
    goal_id, user_id = new_id(), new_user_id()
    done_at = datetime(2026, 11, 25, 12, tzinfo=UTC)
    apply_events(consumer, goal_event("goals.goal.completed", goal_id, user_id, 2,
                                      completed_at=done_at))
    apply_events(consumer, goal_event("goals.goal.created", goal_id, user_id, 1))
    view = get(db, GoalView, goal_id)
    assert (view.title, view.start_date, view.deadline) == ("Ship it", START, DEADLINE)
    assert (view.status, view.completed_at, view.version) == ("COMPLETED", done_at, 2)


def test_a_deleted_goal_is_not_revived_by_a_stale_event(consumer: EventConsumer,
                                                        db: Database) -> None:
    goal_id, user_id = new_id(), new_user_id()
    apply_events(consumer, goal_event("goals.goal.created", goal_id, user_id, 1))
    apply_events(consumer, goal_event("goals.goal.deleted", goal_id, user_id, 3))
    apply_events(consumer, goal_event("goals.goal.updated", goal_id, user_id, 2))
    apply_events(consumer, goal_event("goals.goal.completed", goal_id, user_id, 2,
                                      completed_at=datetime.now(UTC)))
    assert get(db, GoalView, goal_id) is None


def test_profiles_follow_auth_and_ignore_older_updates(consumer: EventConsumer,
                                                       db: Database) -> None:
    user_id = new_user_id()
    registered = event("auth.user.registered", user_id=user_id, name="Ada",
                       current_role="Engineer", experience_level="SENIOR",
                       current_skills=["python"], current_goals=["lead a team"])
    updated = event("auth.user.updated", user_id=user_id, name="Ada", current_role="Lead",
                    experience_level="LEAD", years_of_experience=9)
    stale = Event(id=new_id(), type="auth.user.updated", source="/tests",
                  time=registered.time - timedelta(minutes=1),
                  data=replace(registered.data, current_role="Intern"),
                  correlation_id=new_id())
    apply_events(consumer, registered, updated)
    apply_events(consumer, stale)
    row = get(db, Profile, user_id)
    assert (row.current_role, row.experience_level, row.years_of_experience) == (
        "Lead", "LEAD", 9)
    assert row.current_skills == [] and row.current_goals == []


def test_published_posts_are_kept_until_unpublished_or_deleted(consumer: EventConsumer,
                                                               db: Database) -> None:
    author = new_user_id()
    kept, unpublished, deleted = new_id(), new_id(), new_id()
    apply_events(consumer, *(post_event("diary.post.published", p, author)
                             for p in (kept, unpublished, deleted)))
    apply_events(consumer, post_event("diary.post.published", kept, author, title="Renamed"))
    apply_events(consumer, post_event("diary.post.unpublished", unpublished, author),
                 post_event("diary.post.deleted", deleted, author))
    assert get(db, PostView, kept).title == "Renamed"
    assert get(db, PostView, unpublished) is None and get(db, PostView, deleted) is None


def test_an_unpublish_overtaking_an_older_publish_leaves_the_post_unpublished(
        consumer: EventConsumer, db: Database) -> None:
    author, post_id = new_user_id(), new_id()
    apply_events(consumer, post_event("diary.post.published", post_id, author, version=1))
    apply_events(consumer, post_event("diary.post.unpublished", post_id, author, version=3))
    apply_events(consumer, post_event("diary.post.published", post_id, author, title="Old",
                                      version=2))
    assert get(db, PostView, post_id) is None
    # A stale unpublish does not remove a newer publish, and a newer publish brings it back.
    apply_events(consumer, post_event("diary.post.published", post_id, author, title="New",
                                      version=4))
    apply_events(consumer, post_event("diary.post.unpublished", post_id, author, version=3))
    assert (get(db, PostView, post_id).title, get(db, PostView, post_id).version) == ("New", 4)
    assert get(db, WithdrawnPost, post_id) is None


def test_a_stale_publish_after_delete_does_not_bring_the_post_back(
        consumer: EventConsumer, db: Database) -> None:
    author, post_id = new_user_id(), new_id()
    apply_events(consumer, post_event("diary.post.published", post_id, author, version=2),
                 post_event("diary.post.deleted", post_id, author, version=3))
    apply_events(consumer, post_event("diary.post.published", post_id, author, version=2))
    assert get(db, PostView, post_id) is None
    # Delivered before the publish it follows, the delete still wins.
    other = new_id()
    apply_events(consumer, post_event("diary.post.deleted", other, author, version=3))
    apply_events(consumer, post_event("diary.post.published", other, author, version=2))
    assert get(db, PostView, other) is None


def test_post_events_without_a_version_apply_in_delivery_order(
        consumer: EventConsumer, db: Database) -> None:
    author, post_id = new_user_id(), new_id()
    apply_events(consumer, post_event("diary.post.published", post_id, author))
    assert get(db, PostView, post_id).version is None
    apply_events(consumer, post_event("diary.post.unpublished", post_id, author))
    assert get(db, PostView, post_id) is None
    apply_events(consumer, post_event("diary.post.published", post_id, author, title="Again"))
    assert get(db, PostView, post_id).title == "Again"
    # A versioned event is newer than any unversioned one, never the other way round.
    apply_events(consumer, post_event("diary.post.unpublished", post_id, author, version=2))
    apply_events(consumer, post_event("diary.post.published", post_id, author))
    assert get(db, PostView, post_id) is None


def test_deleting_a_user_removes_every_row_about_them(consumer: EventConsumer,
                                                      db: Database) -> None:
    leaver, other = new_user_id(), new_user_id()
    for user_id in (leaver, other):
        apply_events(
            consumer,
            event("auth.user.registered", user_id=user_id, name="Ada"),
            goal_event("goals.goal.created", new_id(), user_id, 1),
            goal_event("goals.goal.deleted", new_id(), user_id, 2),
            post_event("diary.post.published", new_id(), user_id),
            post_event("diary.post.unpublished", new_id(), user_id, version=2),
        )
        with db.sessions.begin() as session:
            session.add(ready_story(user_id, "2026-W48"))

    apply_events(consumer, event("auth.user.deleted", user_id=leaver,
                                 deleted_at=datetime.now(UTC)))

    assert count(db, Story, Story.user_id == leaver) == 0
    assert count(db, Profile, Profile.user_id == leaver) == 0
    assert count(db, GoalView, GoalView.user_id == leaver) == 0
    assert count(db, PostView, PostView.author_id == leaver) == 0
    assert count(db, WithdrawnPost, WithdrawnPost.author_id == leaver) == 0
    assert count(db, Story, Story.user_id == other) == 1
    assert count(db, GoalView, GoalView.user_id == other) == 1
    assert count(db, PostView, PostView.author_id == other) == 1
    assert count(db, WithdrawnPost, WithdrawnPost.author_id == other) == 1
    assert get(db, Profile, other) is not None


def test_a_late_event_about_a_deleted_user_changes_nothing(consumer: EventConsumer,
                                                           db: Database) -> None:
    user_id, goal_id, post_id = new_user_id(), new_id(), new_id()
    apply_events(consumer, event("auth.user.deleted", user_id=user_id,
                                 deleted_at=datetime.now(UTC)))
    late = apply_events(
        consumer,
        event("auth.user.updated", user_id=user_id, name="Back again"),
        goal_event("goals.goal.created", goal_id, user_id, 1),
        goal_event("goals.goal.completed", goal_id, user_id, 2, completed_at=datetime.now(UTC)),
        post_event("diary.post.published", post_id, user_id),
    )
    assert all(d.error is None for d in late)
    assert get(db, Profile, user_id) is None
    assert get(db, GoalView, goal_id) is None
    assert get(db, PostView, post_id) is None
