"""What diary does with auth's user events: an author projection, and forgetting a user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.diary.handlers import HANDLERS
from services.diary.models import Author, Like, Post, PostStatus, Reply
from shared.consumer import EventConsumer
from shared.db import Database
from shared.events import Event
from tests.helpers import apply_events, event, make_consumer, new_user_id


@pytest.fixture
def db(dbs: Callable[[str], Database]) -> Database:
    return dbs("diary")


@pytest.fixture
def consumer(settings: Any, db: Database) -> EventConsumer:
    return make_consumer(settings("diary"), db, HANDLERS)


def profile(user_id: str, **fields: Any) -> dict[str, Any]:
    return {"user_id": user_id, "name": "Ada", "image": "https://img.example/ada.png", **fields}


def deleted(user_id: str) -> Event:
    return event("auth.user.deleted", user_id=user_id, deleted_at=datetime.now(UTC))


def at(e: Event, time: datetime) -> Event:
    """The same event as if auth had raised it at `time`."""
    return Event(id=e.id, type=e.type, source=e.source, time=time, data=e.data,
                 correlation_id=e.correlation_id)


def seed_post(db: Database, author_id: str, **fields: Any) -> str:
    if fields.get("status") is PostStatus.PUBLISHED:
        fields.setdefault("published_at", datetime.now(UTC))
    with db.sessions.begin() as session:
        post = Post(author_id=author_id, title="t", content="c", **fields)
        session.add(post)
        session.flush()
        return post.id


def seed_reaction(db: Database, user_id: str, post_id: str) -> None:
    with db.sessions.begin() as session:
        session.add_all([Like(user_id=user_id, post_id=post_id),
                         Reply(author_id=user_id, post_id=post_id, content="Well done")])


def count(db: Database, model: Any, *where: Any) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def author_row(db: Database, user_id: str) -> Author | None:
    with db.sessions() as session:
        return session.get(Author, user_id)


def test_registration_and_updates_keep_the_author_projection(consumer: EventConsumer,
                                                             db: Database) -> None:
    user_id = new_user_id()
    apply_events(consumer, event("auth.user.registered", **profile(user_id)))
    apply_events(consumer, event("auth.user.updated", **profile(user_id, name="Ada L.")))
    row = author_row(db, user_id)
    assert row is not None and row.name == "Ada L."
    assert row.image == "https://img.example/ada.png"


def test_an_older_profile_delivered_late_does_not_overwrite_a_newer_one(
        consumer: EventConsumer, db: Database) -> None:
    user_id = new_user_id()
    now = datetime.now(UTC)
    older = at(event("auth.user.updated", **profile(user_id, name="Old")), now)
    newer = at(event("auth.user.updated", **profile(user_id, name="New")),
               now + timedelta(seconds=1))
    apply_events(consumer, newer)
    apply_events(consumer, older)
    row = author_row(db, user_id)
    assert row is not None and row.name == "New"


def test_deleting_a_user_removes_their_posts_likes_replies_and_author_row(
        consumer: EventConsumer, db: Database) -> None:
    leaver, friend = new_user_id(), new_user_id()
    apply_events(consumer, event("auth.user.registered", **profile(leaver)))
    own_posts = [seed_post(db, leaver), seed_post(db, leaver, status=PostStatus.PUBLISHED)]
    friends_post = seed_post(db, friend, status=PostStatus.PUBLISHED)
    seed_reaction(db, friend, own_posts[1])    # goes with the leaver's post (cascade)
    seed_reaction(db, leaver, friends_post)    # the leaver's reactions on others' posts
    seed_reaction(db, friend, friends_post)    # stays

    apply_events(consumer, deleted(leaver))

    assert count(db, Post, Post.author_id == leaver) == 0
    assert count(db, Like, Like.post_id.in_(own_posts)) == 0
    assert count(db, Reply, Reply.post_id.in_(own_posts)) == 0
    assert count(db, Like, Like.user_id == leaver) == 0
    assert count(db, Reply, Reply.author_id == leaver) == 0
    assert author_row(db, leaver) is None
    # The friend's post and the friend's own reactions are untouched.
    assert count(db, Post, Post.id == friends_post) == 1
    assert count(db, Like, Like.post_id == friends_post) == 1
    assert count(db, Reply, Reply.post_id == friends_post) == 1


def test_a_late_event_about_a_deleted_user_changes_nothing(consumer: EventConsumer,
                                                           db: Database) -> None:
    user_id = new_user_id()
    apply_events(consumer, event("auth.user.registered", **profile(user_id)))
    apply_events(consumer, deleted(user_id))
    late = apply_events(consumer, event("auth.user.updated", **profile(user_id, name="Back")))
    assert late[0].error is None  # recorded and ignored, not retried
    assert author_row(db, user_id) is None


def test_a_redelivered_deletion_changes_nothing_twice(consumer: EventConsumer,
                                                      db: Database) -> None:
    user_id = new_user_id()
    seed_post(db, user_id)
    deletion = deleted(user_id)
    apply_events(consumer, deletion)
    apply_events(consumer, deletion)
    assert count(db, Post, Post.author_id == user_id) == 0
    with db.sessions() as session:
        processed = session.scalar(select(func.count()).select_from(db.inbox).where(
            db.inbox.c.event_id == deletion.id))
    assert processed == 1


def test_deleting_a_user_lowers_the_counters_of_the_posts_they_liked_and_replied_to(
        consumer: EventConsumer, client: Callable[[str], Any],
        auth_header: Callable[[str], dict[str, str]], db: Database) -> None:
    from tests.diary.conftest import kept_counts, true_counts

    diary = client("diary")
    leaver, friend, other = new_user_id(), new_user_id(), new_user_id()
    post = diary.post("/diary/posts", json={"title": "t", "content": "c", "status": "PUBLISHED"},
                      headers=auth_header(friend)).json["id"]
    for who in (leaver, other):
        diary.put(f"/diary/posts/{post}/like", headers=auth_header(who))
        for _ in range(2):
            diary.post(f"/diary/posts/{post}/replies", json={"content": "hi"},
                       headers=auth_header(who))
    assert kept_counts(db, post) == (2, 4)

    apply_events(consumer, deleted(leaver))

    assert kept_counts(db, post) == true_counts(db, post) == (1, 2)
    seen = diary.get(f"/diary/posts/{post}", headers=auth_header(friend)).json
    assert (seen["likeCount"], seen["replyCount"]) == (1, 2)


def test_after_a_users_deletion_their_late_likes_replies_and_profile_bring_nothing_back(
        consumer: EventConsumer, client: Callable[[str], Any],
        auth_header: Callable[[str], dict[str, str]], db: Database) -> None:
    from tests.diary.conftest import kept_counts, true_counts
    from tests.helpers import wait_for

    diary = client("diary")
    leaver, friend = new_user_id(), new_user_id()
    post = diary.post("/diary/posts", json={"title": "t", "content": "c", "status": "PUBLISHED"},
                      headers=auth_header(friend)).json["id"]
    own = diary.post("/diary/posts", json={"title": "t", "content": "c", "status": "PUBLISHED"},
                     headers=auth_header(leaver)).json["id"]
    tombstones = diary.application.extensions["service"].tombstones
    wait_for(lambda: tombstones.live, timeout=5, message="the tombstone listener is live")
    profile_before = event("auth.user.updated", **profile(leaver, name="Before"))

    apply_events(consumer, deleted(leaver))

    late = auth_header(leaver)  # a token auth signed before the deletion
    wait_for(lambda: diary.put(f"/diary/posts/{post}/like", headers=late).status_code == 401,
             timeout=10, message="the deleted user's token refused")
    for method, path, body in [("put", f"/diary/posts/{post}/like", None),
                               ("post", f"/diary/posts/{post}/replies", {"content": "late"}),
                               ("post", "/diary/posts", {"title": "t", "content": "c"}),
                               ("post", f"/diary/posts/{own}/publish", None)]:
        assert getattr(diary, method)(path, json=body, headers=late).status_code == 401
    apply_events(consumer, profile_before)  # delivered late
    apply_events(consumer, event("auth.user.registered", **profile(leaver)))
    assert author_row(db, leaver) is None
    assert count(db, Post, Post.author_id == leaver) == 0
    assert kept_counts(db, post) == true_counts(db, post) == (0, 0)
    assert diary.get(f"/diary/posts/{own}", headers=auth_header(friend)).status_code == 404
