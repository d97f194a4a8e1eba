"""likeCount and replyCount equal the rows after any interleaving, and the reconcile
command finds and fixes a counter that drifted anyway."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from services.diary import usecases
from services.diary.handlers import HANDLERS
from services.diary.models import PostStats, PostStatus
from services.diary.reconcile import reconcile_counts
from shared.db import Database, UnitOfWork
from shared.errors import NotFound
from tests.diary.conftest import kept_counts, true_counts
from tests.helpers import apply_events, at_once, event, make_consumer, new_user_id


@pytest.fixture
def wide_db(settings: Callable[..., Any]) -> Iterator[Database]:
    """Up to 16 connections: sixteen transactions really run at once (fifty would take half
    of PostgreSQL's default max_connections, which the rest of the suite shares), and the
    other threads queue for a connection, released together all the same."""
    db = Database(settings("diary").database_url, "diary", pool_size=8)
    yield db
    db.dispose()


def uow(db: Database) -> UnitOfWork:
    return UnitOfWork(db, source="/tests")


def published_post(db: Database, author_id: str | None = None) -> str:
    return str(usecases.create_post(uow(db), author_id=author_id or new_user_id(),
                                    title="t", content="c", status=PostStatus.PUBLISHED).id)


def assert_exact(db: Database, post_id: str, expected: tuple[int, int] | None = None) -> None:
    truth = true_counts(db, post_id)
    assert kept_counts(db, post_id) == truth
    if expected is not None:
        assert truth == expected


def test_fifty_users_liking_one_post_at_once_count_fifty(wide_db: Database) -> None:
    post = published_post(wide_db)
    users = [new_user_id() for _ in range(50)]
    errors = at_once(50, lambda n: usecases.like_post(uow(wide_db), user_id=users[n],
                                                      post_id=post))
    assert errors == []
    assert_exact(wide_db, post, (50, 0))


def test_one_user_liking_sixteen_times_at_once_counts_one(wide_db: Database) -> None:
    post, user = published_post(wide_db), new_user_id()
    answers: list[dict[str, Any]] = []
    errors = at_once(16, lambda n: answers.append(
        usecases.like_post(uow(wide_db), user_id=user, post_id=post)))
    assert errors == []
    assert {a["like_count"] for a in answers} == {1}
    assert_exact(wide_db, post, (1, 0))


def test_concurrent_like_and_unlike_pairs_leave_the_counter_exact(wide_db: Database) -> None:
    post = published_post(wide_db)
    users = [new_user_id() for _ in range(12)]
    for user in users[:6]:  # half have liked already
        usecases.like_post(uow(wide_db), user_id=user, post_id=post)

    def work(n: int) -> None:
        user = users[n // 4]
        if n % 2:
            usecases.unlike_post(uow(wide_db), user_id=user, post_id=post)
        else:
            usecases.like_post(uow(wide_db), user_id=user, post_id=post)

    for _ in range(3):
        assert at_once(48, work) == []
        assert_exact(wide_db, post)


def test_replies_added_and_deleted_concurrently_leave_the_counter_exact(
        wide_db: Database) -> None:
    author = new_user_id()
    post = published_post(wide_db, author)
    repliers = [new_user_id() for _ in range(10)]
    existing = [usecases.add_reply(uow(wide_db), author_id=r, post_id=post, content="x")
                for r in repliers]

    def work(n: int) -> None:
        if n < 20:
            usecases.add_reply(uow(wide_db), author_id=repliers[n % 10], post_id=post,
                               content=f"r{n}")
            return
        reply = existing[n % 10]
        # each existing reply deleted twice at once: by its author and by the post's author
        deleter = reply.author_id if n < 30 else author
        with contextlib.suppress(NotFound):  # the other deletion was first
            usecases.delete_reply(uow(wide_db), user_id=deleter, reply_id=reply.id)

    assert at_once(40, work) == []
    assert_exact(wide_db, post, (0, 20))


def test_deleting_a_post_amid_likes_and_replies_leaves_nothing_behind(
        wide_db: Database) -> None:
    author = new_user_id()
    post = published_post(wide_db, author)
    users = [new_user_id() for _ in range(30)]

    def work(n: int) -> None:
        try:
            if n == 15:
                usecases.delete_post(uow(wide_db), author_id=author, post_id=post)
            elif n % 2:
                usecases.like_post(uow(wide_db), user_id=users[n], post_id=post)
            else:
                usecases.add_reply(uow(wide_db), author_id=users[n], post_id=post,
                                   content="x")
        except NotFound:
            pass  # it was gone already: the 404 a caller would get

    assert at_once(30, work) == []
    assert true_counts(wide_db, post) == (0, 0)
    assert kept_counts(wide_db, post) is None


def test_deleting_a_user_amid_likes_fixes_the_counters_of_others_posts(
        wide_db: Database, dbs: Callable[[str], Database], settings: Any) -> None:
    leaver = new_user_id()
    others = [published_post(wide_db) for _ in range(6)]
    for post in others:
        usecases.like_post(uow(wide_db), user_id=leaver, post_id=post)
        usecases.add_reply(uow(wide_db), author_id=leaver, post_id=post, content="x")
    own = published_post(wide_db, leaver)
    consumer = make_consumer(settings("diary"), dbs("diary"), HANDLERS)
    users = [new_user_id() for _ in range(25)]

    def work(n: int) -> None:
        if n == 12:
            apply_events(consumer, event("auth.user.deleted", user_id=leaver,
                                         deleted_at=datetime.now(UTC)))
            return
        post = others[n % 6]
        try:
            usecases.like_post(uow(wide_db), user_id=users[n], post_id=post)
            usecases.add_reply(uow(wide_db), author_id=users[n], post_id=post, content="y")
        except NotFound:
            raise AssertionError("others' posts stay") from None

    assert at_once(25, work) == []
    for post in others:
        assert_exact(wide_db, post)
    assert sum(true_counts(wide_db, p)[0] for p in others) == 24
    assert sum(true_counts(wide_db, p)[1] for p in others) == 24
    assert kept_counts(wide_db, own) is None


def test_reconcile_finds_and_fixes_a_counter_corrupted_by_hand(db: Database) -> None:
    post, healthy = published_post(db), published_post(db)
    for _ in range(3):
        usecases.like_post(uow(db), user_id=new_user_id(), post_id=post)
    usecases.add_reply(uow(db), author_id=new_user_id(), post_id=post, content="x")
    usecases.like_post(uow(db), user_id=new_user_id(), post_id=healthy)
    with db.sessions.begin() as session:
        session.execute(update(PostStats).where(PostStats.post_id == post)
                        .values(like_count=17, reply_count=-2))

    checked, fixed = reconcile_counts(db, batch=2)
    assert checked >= 2
    # (other tests' rows written straight to the tables may be mended too: not ours to check)
    assert [(d.post_id, d.kept_likes, d.likes, d.kept_replies, d.replies)
            for d in fixed if d.post_id in (post, healthy)] == [(post, 17, 3, -2, 1)]
    assert_exact(db, post, (3, 1))
    assert_exact(db, healthy, (1, 0))
    assert reconcile_counts(db)[1] == []  # nothing left to fix anywhere


def test_concurrent_publish_and_unpublish_give_every_event_its_own_version_in_order(
        wide_db: Database, dbs: Callable[[str], Database]) -> None:
    from tests.diary.test_posts_api import outbox_events

    author = new_user_id()
    post = published_post(wide_db, author)

    def work(n: int) -> None:
        change = usecases.publish_post if n % 2 else usecases.unpublish_post
        change(uow(wide_db), author_id=author, post_id=post)

    for _ in range(3):
        assert at_once(12, work) == []
    events = outbox_events(dbs, post)
    versions = [e["data"]["version"] for _, e in events]
    # The row lock orders them: each change saw the one before and bumped past it.
    assert sorted(versions) == list(range(2, 2 + len(events)))
    types = [t for t, _ in sorted(events, key=lambda te: te[1]["data"]["version"])]
    assert all(a != b for a, b in zip(types, types[1:], strict=False))  # they alternate
    final = usecases.get_post(uow(wide_db), viewer_id=author, post_id=post)
    latest = types[-1]
    assert final.status is (PostStatus.PUBLISHED if latest == "diary.post.published"
                            else PostStatus.DRAFT)
