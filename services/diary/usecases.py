"""What the diary service does. Plain functions of a unit of work; no Flask here.

A post's public life (published, updated while published, unpublished, deleted) is
recorded as an event in the same transaction as the change; each change bumps the post's
version, which the event carries, so a consumer can tell a late event from a newer one.
A draft is its author's alone: anyone else is told it does not exist, as are its likes and
replies.

Counters (`post_stats`) move in the transaction of the row they count, and only by what
really happened: `+ 1` when an INSERT returned a row, `- 1` when a DELETE did; never read,
add and write back. Every like and reply change first takes the post row FOR KEY SHARE,
so a post's deletion waits for it (no foreign-key error, no lock taken in the other
order), while likers never block each other on the post.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Select,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.diary.models import Author, Post, PostStatus
from services.diary.views import (
    FEED,
    LIKES,
    LIKES_OF_POST,
    POST_VIEW,
    POSTS,
    PUBLISHED,
    REPLIES,
    REPLIES_OF_POST,
    REPLY_VIEW,
    STATS,
    USER_PAGE,
    VISIBLE,
    LikeView,
    PostView,
    ReplyView,
    likes,
    posts,
    replies,
    stats,
)
from shared.db import UnitOfWork, first_or_not_found, utcnow
from shared.errors import NotFound, Unauthorized
from shared.events import UserProfile
from shared.pagination import Page, decode_cursor, walk

_UNSET: Any = object()
T = TypeVar("T")

# The first key of the per-user advisory locks below (the second is the user id's hash).
USER_LOCK = 0x6469  # "di"
_STILL_HERE = text("""
    SELECT pg_advisory_xact_lock_shared(:ns, hashtext(:user_id))::text,
           EXISTS (SELECT 1 FROM deleted_user WHERE user_id = :user_id)
""")


def _still_here(session: Session, user_id: str) -> None:
    """Refuse a write by a user whose deletion has been applied.

    The web process refuses a deleted user's token from memory within milliseconds, but a
    request can be past that check when the deletion lands. So each write that adds a row
    (post, like, reply) holds the user's advisory lock shared and reads the tombstone;
    `forget_user` takes the lock exclusively: it waits for writes in flight and then
    deletes what they wrote, and a later write waits for it and then sees the tombstone.
    """
    if session.execute(_STILL_HERE, {"ns": USER_LOCK, "user_id": user_id}).one()[1]:
        raise Unauthorized("This user has been deleted")


def post_changed(post: Post) -> dict[str, Any]:
    return {"post_id": post.id, "author_id": post.author_id, "title": post.title,
            "published_at": post.published_at, "version": post.version}


# A resync's answer (shared.resync): the published posts, by id, as the published events'
# payload at each post's current version. A draft is in no snapshot: to a reader it does
# not exist, as after its unpublished event.
post_snapshots = walk(select(Post).where(Post.status == PostStatus.PUBLISHED),
                              Post.id, post_changed)


def _one(session: Session, query: Select[Any], detail: str, view: Callable[..., T],
         params: dict[str, Any] | None = None) -> T:
    row = session.execute(query.limit(1), params or {}).first()
    if row is None:
        raise NotFound(detail)
    return view(*row)


def _view_of(session: Session, viewer_id: str, post_id: str) -> PostView:
    return _one(session, POST_VIEW.where(posts.id == post_id), "No such post", PostView,
                {"viewer_id": viewer_id})


def get_post(uow: UnitOfWork, *, viewer_id: str, post_id: str) -> PostView:
    """A published post is anyone's to read; a draft only its author's."""
    with uow.read_only():
        return _one(uow.session, POST_VIEW.where(posts.id == post_id, VISIBLE),
                    "No such post", PostView, {"viewer_id": viewer_id})


def feed(uow: UnitOfWork, *, viewer_id: str, limit: int = 20,
         cursor: str | None = None) -> Page[PostView]:
    """Everyone's published posts, newest published first: a backward range scan of the
    partial (published_at, id) index, a page deep as cheap as the first."""
    with uow.read_only():
        return FEED.page(uow.session, limit=limit, cursor=cursor,
                         params={"viewer_id": viewer_id})


def user_posts(uow: UnitOfWork, *, viewer_id: str, user_id: str,
               status: PostStatus | None = None, limit: int = 20,
               cursor: str | None = None) -> Page[PostView]:
    """A user's posts, newest written first: their published ones for anyone, and for the
    user themself also the drafts (`status` filters)."""
    if viewer_id != user_id:
        if status is PostStatus.DRAFT:  # nobody else sees a user's drafts
            if cursor:
                decode_cursor(cursor)
            return Page([], None)
        status = PostStatus.PUBLISHED
    with uow.read_only():
        return USER_PAGE[status].page(uow.session, limit=limit, cursor=cursor, params={
            "viewer_id": viewer_id, "author_id": user_id})


# Writing, publishing, unpublishing, deleting a post.

def _owned(session: Session, author_id: str, post_id: str, *, lock: bool = False) -> Post:
    return first_or_not_found(
        session, select(Post).where(Post.id == post_id, Post.author_id == author_id),
        "No such post", lock=lock)


def create_post(
    uow: UnitOfWork,
    *,
    author_id: str,
    title: str,
    content: str,
    status: PostStatus = PostStatus.DRAFT,
) -> PostView:
    post = Post(author_id=author_id, title=title, content=content, status=PostStatus.DRAFT)
    with uow:
        _still_here(uow.session, author_id)
        uow.session.add(post)
        uow.session.flush()
        uow.session.execute(insert(STATS).values(post_id=post.id))
        if status is PostStatus.PUBLISHED:
            _publish(uow, post)
        view = _view_of(uow.session, author_id, post.id)
        uow.commit()
    return view


def _publish(uow: UnitOfWork, post: Post) -> None:
    post.status, post.published_at = PostStatus.PUBLISHED, utcnow()
    post.version += 1
    uow.session.flush()
    uow.publish("diary.post.published", post_changed(post))


def update_post(uow: UnitOfWork, *, author_id: str, post_id: str, title: str = _UNSET,
                content: str = _UNSET) -> PostView:
    """Change the title or content; a published post's change raises diary.post.updated."""
    with uow:
        post = _owned(uow.session, author_id, post_id, lock=True)
        changed = False
        if title is not _UNSET and title != post.title:
            post.title, changed = title, True
        if content is not _UNSET and content != post.content:
            post.content, changed = content, True
        if changed:
            post.version += 1
            uow.session.flush()
            if post.status is PostStatus.PUBLISHED:
                uow.publish("diary.post.updated", post_changed(post))
        view = _view_of(uow.session, author_id, post.id)
        uow.commit()
    return view


def publish_post(uow: UnitOfWork, *, author_id: str, post_id: str) -> PostView:
    """DRAFT -> PUBLISHED (newest in the feed); publishing a published post changes nothing
    and says nothing. The row lock orders it against a concurrent unpublish: each sees the
    other's version and bumps past it."""
    with uow:
        post = _owned(uow.session, author_id, post_id, lock=True)
        if post.status is PostStatus.DRAFT:
            _publish(uow, post)
        view = _view_of(uow.session, author_id, post.id)
        uow.commit()
    return view


def unpublish_post(uow: UnitOfWork, *, author_id: str, post_id: str) -> PostView:
    """PUBLISHED -> DRAFT: hidden from everyone else, its likes and replies kept for the
    next publish; unpublishing a draft changes nothing and says nothing."""
    with uow:
        post = _owned(uow.session, author_id, post_id, lock=True)
        if post.status is PostStatus.PUBLISHED:
            post.status, post.published_at = PostStatus.DRAFT, None
            post.version += 1
            uow.session.flush()
            uow.publish("diary.post.unpublished", post_changed(post))
        view = _view_of(uow.session, author_id, post.id)
        uow.commit()
    return view


def delete_post(uow: UnitOfWork, *, author_id: str, post_id: str) -> None:
    """The post goes with its likes, replies and counters (foreign keys cascade)."""
    with uow:
        post = _owned(uow.session, author_id, post_id, lock=True)
        post.version += 1
        uow.publish("diary.post.deleted", post_changed(post))
        uow.session.delete(post)
        uow.commit()


# Likes and replies, and the counters that move with them.

def _hold_post(session: Session, post_id: str, *visible: Any) -> None:
    """Take the post FOR KEY SHARE (its deletion waits for us), or NotFound."""
    found = session.execute(select(posts.id).where(posts.id == post_id, *visible)
                            .with_for_update(key_share=True)).first()
    if found is None:
        raise NotFound("No such post")


def _count(session: Session, post_id: str, column: str, delta: int) -> int:
    """Move one counter of the post by `delta` in place; its value after."""
    table = STATS
    counter = table.c[column]
    stmt = insert(table).values(post_id=post_id, **{column: max(delta, 0)})
    stmt = stmt.on_conflict_do_update(index_elements=[stats.post_id],
                                      set_={column: counter + delta})
    return int(session.execute(stmt.returning(counter)).scalar_one())


def _counter(session: Session, post_id: str, column: str) -> int:
    return int(session.scalar(select(STATS.c[column])
                              .where(stats.post_id == post_id)) or 0)


def like_post(uow: UnitOfWork, *, user_id: str, post_id: str) -> dict[str, Any]:
    """Idempotent: a second like of the same post inserts nothing and counts nothing."""
    with uow:
        _still_here(uow.session, user_id)
        _hold_post(uow.session, post_id, PUBLISHED)
        inserted = uow.session.execute(
            insert(LIKES).values(user_id=user_id, post_id=post_id)
            .on_conflict_do_nothing(index_elements=[likes.user_id, likes.post_id])
            .returning(likes.id)).first()
        count = (_count(uow.session, post_id, "like_count", +1) if inserted
                 else _counter(uow.session, post_id, "like_count"))
        uow.commit()
    return {"like_count": count, "liked_by_me": True}


def unlike_post(uow: UnitOfWork, *, user_id: str, post_id: str) -> dict[str, Any]:
    """Idempotent: unliking what was not liked deletes nothing and counts nothing."""
    with uow:
        _hold_post(uow.session, post_id, PUBLISHED)
        deleted = uow.session.execute(
            delete(LIKES).where(likes.user_id == user_id, likes.post_id == post_id)
            .returning(likes.id)).first()
        count = (_count(uow.session, post_id, "like_count", -1) if deleted
                 else _counter(uow.session, post_id, "like_count"))
        uow.commit()
    return {"like_count": count, "liked_by_me": False}


def post_likes(uow: UnitOfWork, *, viewer_id: str, post_id: str, limit: int = 20,
               cursor: str | None = None) -> Page[LikeView]:
    """Who liked a post, newest first, with names from the author projection."""
    with uow.read_only():
        _must_see(uow.session, viewer_id, post_id, cursor)
        return LIKES_OF_POST.page(uow.session, limit=limit, cursor=cursor,
                                  params={"post_id": post_id})


def _must_see(session: Session, viewer_id: str, post_id: str, cursor: str | None) -> None:
    if cursor:
        decode_cursor(cursor)  # a bad cursor is a 422 whether or not the post is there
    if session.execute(select(posts.id).where(posts.id == post_id, VISIBLE),
                       {"viewer_id": viewer_id}).first() is None:
        raise NotFound("No such post")


def post_replies(uow: UnitOfWork, *, viewer_id: str, post_id: str, limit: int = 20,
                 cursor: str | None = None) -> Page[ReplyView]:
    """A post's replies, oldest first (the seed's (post_id, created_at) index)."""
    with uow.read_only():
        _must_see(uow.session, viewer_id, post_id, cursor)
        return REPLIES_OF_POST.page(uow.session, limit=limit, cursor=cursor,
                                    params={"post_id": post_id})


def add_reply(uow: UnitOfWork, *, author_id: str, post_id: str, content: str) -> ReplyView:
    """Replies go on published posts only."""
    with uow:
        _still_here(uow.session, author_id)
        _hold_post(uow.session, post_id, PUBLISHED)
        reply_id = uow.session.execute(
            insert(REPLIES).values(author_id=author_id, post_id=post_id,
                                           content=content)
            .returning(replies.id)).scalar_one()
        _count(uow.session, post_id, "reply_count", +1)
        view = _one(uow.session, REPLY_VIEW.where(replies.id == reply_id), "No such reply",
                    ReplyView)
        uow.commit()
    return view


def edit_reply(uow: UnitOfWork, *, author_id: str, reply_id: str, content: str) -> ReplyView:
    """By its author, while they can see the post."""
    with uow:
        found = uow.session.execute(
            select(replies.id).join_from(REPLIES, POSTS,
                                         posts.id == replies.post_id)
            .where(replies.id == reply_id, replies.author_id == author_id, VISIBLE)
            .with_for_update(of=REPLIES), {"viewer_id": author_id}).first()
        if found is None:
            raise NotFound("No such reply")
        uow.session.execute(update(REPLIES).where(replies.id == reply_id)
                            .values(content=content, updated_at=func.now()))
        view = _one(uow.session, REPLY_VIEW.where(replies.id == reply_id), "No such reply",
                    ReplyView)
        uow.commit()
    return view


def delete_reply(uow: UnitOfWork, *, user_id: str, reply_id: str) -> None:
    """By its author (while they can see the post) or by the post's author."""
    with uow:
        found = uow.session.execute(
            select(replies.post_id).join_from(REPLIES, POSTS,
                                              posts.id == replies.post_id)
            .where(replies.id == reply_id,
                   or_(posts.author_id == user_id,
                       (replies.author_id == user_id) & PUBLISHED))
            .with_for_update(of=POSTS, key_share=True)).first()
        if found is None:
            raise NotFound("No such reply")
        gone = uow.session.execute(delete(REPLIES).where(replies.id == reply_id)
                                   .returning(replies.post_id)).first()
        if gone is not None:  # a concurrent deletion of the same reply counted it already
            _count(uow.session, found.post_id, "reply_count", -1)
        uow.commit()


# What auth's events bring.

def remember_author(session: Session, *, profile: UserProfile, as_of: datetime) -> None:
    """Upsert the author projection unless it already reflects a later profile."""
    row = {"user_id": profile.user_id, "name": profile.name, "image": profile.image,
           "updated_at": as_of, "synced_at": func.now()}  # confirmed: shared.resync
    stmt = insert(Author).values(row)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Author.user_id],
        set_={k: stmt.excluded[k] for k in ("name", "image", "updated_at", "synced_at")},
        where=Author.updated_at <= stmt.excluded.updated_at,
    ))


_UNCOUNT = {
    # The user's likes, then replies, on posts that stay: deleted, and each post's counter
    # lowered by how many of its rows went, in one statement each (set-based).
    "like_count": """
        WITH gone AS (DELETE FROM likes WHERE user_id = :user_id RETURNING post_id),
             per_post AS (SELECT post_id, count(*) AS n FROM gone GROUP BY post_id)
        UPDATE post_stats s SET like_count = s.like_count - per_post.n
        FROM per_post WHERE s.post_id = per_post.post_id
    """,
    "reply_count": """
        WITH gone AS (DELETE FROM replies WHERE author_id = :user_id RETURNING post_id),
             per_post AS (SELECT post_id, count(*) AS n FROM gone GROUP BY post_id)
        UPDATE post_stats s SET reply_count = s.reply_count - per_post.n
        FROM per_post WHERE s.post_id = per_post.post_id
    """,
}


def forget_user(session: Session, *, user_id: str) -> None:
    """A deleted user's posts (with everyone's likes and replies on them), their likes and
    replies on others' posts (those posts' counters lowered to match), and their author
    row all go. The consumer has already laid the tombstone, so nothing about them comes
    back: their token is refused, and a late profile finds the tombstone.

    No diary.post.deleted events are raised for the posts: every consumer of post events
    also consumes auth.user.deleted and forgets the user's posts itself.
    """
    session.execute(text("SELECT pg_advisory_xact_lock(:ns, hashtext(:user_id))"),
                    {"ns": USER_LOCK, "user_id": user_id})  # see _still_here
    session.execute(delete(Post).where(Post.author_id == user_id))
    for statement in _UNCOUNT.values():
        session.execute(text(statement), {"user_id": user_id})
    session.execute(delete(Author).where(Author.user_id == user_id))
