"""The diary schema: the seed's Post, Like and Reply, plus a projection of authors.

Users live in auth's schema, so every user id here is a plain string and a user's deletion
arrives as an event. Inside the schema the seed's `onDelete: Cascade` is a real foreign key:
deleting a post takes its likes and replies with it.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import EagerDefaults, Timestamps, service_metadata
from shared.ids import new_id


class Base(EagerDefaults, DeclarativeBase):
    metadata = service_metadata("diary")


class PostStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"


class Post(Timestamps, Base):
    __tablename__ = "posts"
    __table_args__ = (
        # The seed's recommended indexes: an author's posts, the feed, chronological order.
        Index("ix_posts_author_id_status", "author_id", "status"),
        Index("ix_posts_status_created_at", "status", "created_at"),
        Index("ix_posts_created_at", "created_at"),
        # Not in the seed (migration 0006, built CONCURRENTLY): the feed's keyset, newest
        # published first, over published posts only; and a user's page, newest first.
        Index("ix_posts_published_at_id", "published_at", "id",
              postgresql_where=text("status = 'PUBLISHED'")),
        Index("ix_posts_author_id_created_at_id", "author_id", "created_at", "id"),
        # A published post has its time, a draft none (migration 0007): the feed's order.
        CheckConstraint("(status = 'PUBLISHED') = (published_at IS NOT NULL)",
                        name="published_at_iff_published"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[PostStatus] = mapped_column(
        Enum(PostStatus, name="post_status"), default=PostStatus.DRAFT,
        server_default=PostStatus.DRAFT.value,
    )
    author_id: Mapped[str] = mapped_column(String(32))
    # Not in the seed: when the post went public, for the feed and the post events.
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Not in the seed: bumped by every change that raises an event, and carried in it, so
    # consumers can tell a late event from a newer one.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class Like(Base):
    __tablename__ = "likes"
    __table_args__ = (
        # One like per user per post; also serves "every like of a user" on deletion.
        UniqueConstraint("user_id", "post_id"),
        Index("ix_likes_post_id", "post_id"),
        # Not in the seed (migration 0006): who liked a post, newest first, without a sort.
        Index("ix_likes_post_id_created_at_id", "post_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(32))
    post_id: Mapped[str] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())


class Reply(Timestamps, Base):
    __tablename__ = "replies"
    __table_args__ = (
        Index("ix_replies_post_id_created_at", "post_id", "created_at"),
        # Not in the seed: finds a deleted user's replies on others' posts.
        Index("ix_replies_author_id", "author_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    content: Mapped[str] = mapped_column(Text)
    author_id: Mapped[str] = mapped_column(String(32))
    post_id: Mapped[str] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))


class PostStats(Base):
    """A post's counters, kept in the transaction of each like, unlike, reply and reply
    deletion (`n = n + 1` only when a row really went in, `n - 1` only when one really went
    out), so a feed page reads them by a join instead of counting rows per item. Narrow and
    apart from the post, so counting never locks or rewrites the post's wide row."""

    __tablename__ = "post_stats"

    post_id: Mapped[str] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"),
                                         primary_key=True)
    like_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reply_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Author(Base):
    """Who wrote a post, as auth last told us: the feed shows it without calling auth.

    `updated_at` is the time of the auth event it reflects, so an older profile delivered
    late never overwrites a newer one.
    """

    __tablename__ = "authors"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When an event (live or a resync's snapshot) last confirmed the row (shared.resync).
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
