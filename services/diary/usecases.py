"""What the diary service does. Plain functions of a unit of work; no Flask here.

A post's public life (published, deleted) is recorded as an event in the same transaction
as the change; each such change bumps the post's version, which the event carries, so a
consumer can tell a late event from a newer one. A draft is its author's alone: anyone
else is told it does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.diary.models import Author, Like, Post, PostStatus, Reply
from shared.db import UnitOfWork, first_or_not_found, utcnow
from shared.events import UserProfile


def post_changed(post: Post) -> dict[str, Any]:
    return {"post_id": post.id, "author_id": post.author_id, "title": post.title,
            "published_at": post.published_at, "version": post.version}


def create_post(
    uow: UnitOfWork,
    *,
    author_id: str,
    title: str,
    content: str,
    status: PostStatus = PostStatus.DRAFT,
) -> Post:
    post = Post(author_id=author_id, title=title, content=content, status=PostStatus.DRAFT)
    with uow:
        uow.session.add(post)
        uow.session.flush()
        if status is PostStatus.PUBLISHED:
            _publish(uow, post)
        uow.commit()
    return post


def _owned(session: Session, author_id: str, post_id: str, *, lock: bool = False) -> Post:
    return first_or_not_found(
        session, select(Post).where(Post.id == post_id, Post.author_id == author_id),
        "No such post", lock=lock)


def get_post(uow: UnitOfWork, *, viewer_id: str, post_id: str) -> Post:
    """A published post is anyone's to read; a draft only its author's."""
    query = select(Post).where(
        Post.id == post_id,
        or_(Post.status == PostStatus.PUBLISHED, Post.author_id == viewer_id),
    )
    with uow.read_only():
        return first_or_not_found(uow.session, query, "No such post")


def _publish(uow: UnitOfWork, post: Post) -> None:
    post.status, post.published_at = PostStatus.PUBLISHED, utcnow()
    post.version += 1
    uow.session.flush()
    uow.publish("diary.post.published", post_changed(post))


def publish_post(uow: UnitOfWork, *, author_id: str, post_id: str) -> Post:
    """DRAFT -> PUBLISHED; publishing a published post changes nothing and says nothing."""
    with uow:
        post = _owned(uow.session, author_id, post_id, lock=True)
        if post.status is PostStatus.DRAFT:
            _publish(uow, post)
        uow.commit()
    return post


def delete_post(uow: UnitOfWork, *, author_id: str, post_id: str) -> None:
    """The post goes with its likes and replies (foreign keys cascade)."""
    with uow:
        post = _owned(uow.session, author_id, post_id, lock=True)
        post.version += 1
        uow.publish("diary.post.deleted", post_changed(post))
        uow.session.delete(post)
        uow.commit()


def remember_author(session: Session, *, profile: UserProfile, as_of: datetime) -> None:
    """Upsert the author projection unless it already reflects a later profile."""
    row = {"user_id": profile.user_id, "name": profile.name, "image": profile.image,
           "updated_at": as_of}
    stmt = insert(Author).values(row)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Author.user_id],
        set_={k: stmt.excluded[k] for k in ("name", "image", "updated_at")},
        where=Author.updated_at <= stmt.excluded.updated_at,
    ))


def forget_user(session: Session, *, user_id: str) -> None:
    """A deleted user's posts (with everyone's likes and replies on them), their likes and
    replies on others' posts, and their author row all go. The consumer has already laid
    the tombstone, so nothing about them comes back.

    No diary.post.deleted events are raised for the posts: every consumer of post events
    also consumes auth.user.deleted and forgets the user's posts itself.
    """
    session.execute(delete(Post).where(Post.author_id == user_id))
    session.execute(delete(Like).where(Like.user_id == user_id))
    session.execute(delete(Reply).where(Reply.author_id == user_id))
    session.execute(delete(Author).where(Author.user_id == user_id))
