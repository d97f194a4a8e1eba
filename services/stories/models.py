"""The stories schema: the seed's Story, and read models of what a story is written from.

Profiles, goals and posts belong to other services; stories keeps its own copies, fed by
their events, so writing a story never calls another service. Enum-like values (period,
status, experience level) are kept as plain strings: the producer owns those enums, and a
new value there must not break a consumer here.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import EagerDefaults, Timestamps, service_metadata
from shared.ids import new_id


class Base(EagerDefaults, DeclarativeBase):
    metadata = service_metadata("stories")


class Story(Timestamps, Base):
    """One story per user per period, written by the stories worker.

    PENDING from the request that admitted it until the worker writes it READY (content,
    generated_at) or FAILED (error: a short reason a person can read). `generation_id` names
    the request being served, so a job delivered twice or outlived by a newer request writes
    nothing; `admitted_on` is the UTC day whose count it took, the day a failure refunds.
    """

    __tablename__ = "stories"
    __table_args__ = (
        # One story per period per user; also serves "every story of a user".
        UniqueConstraint("user_id", "period"),
        # Keyset pagination of one user's stories, newest first.
        Index("ix_stories_user_id_created_at_id", "user_id", "created_at", "id"),
        # The sweeper's scan for generations past their deadline.
        Index("ix_stories_requested_at_pending", "requested_at",
              postgresql_where=text("status = 'PENDING'")),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(32))
    # A period id: 2026-11-24, 2026-W48, 2026-11, 2026-Q4 or 2026 (services.stories.periods).
    period: Mapped[str] = mapped_column(String(32))
    period_kind: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # exclusive
    status: Mapped[str] = mapped_column(String(16))  # PENDING | READY | FAILED
    content: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    generated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    generation_id: Mapped[str | None] = mapped_column(String(32))
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    admitted_on: Mapped[date | None] = mapped_column(Date)


class GenerationCount(Base):
    """Generations admitted per user per UTC day: the daily limit, counted in the statement
    that admits a request."""

    __tablename__ = "generation_counts"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class Profile(Base):
    """A user's career profile as auth last told us, for the story prompt.

    `updated_at` is the time of the auth event it reflects, so an older profile delivered
    late never overwrites a newer one.
    """

    __tablename__ = "profiles"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    current_role: Mapped[str | None] = mapped_column(Text)
    experience_level: Mapped[str | None] = mapped_column(String(32))
    industry: Mapped[str | None] = mapped_column(Text)
    years_of_experience: Mapped[int | None] = mapped_column(Integer)
    current_skills: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    target_skills: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    bio: Mapped[str | None] = mapped_column(Text)
    current_goals: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When an event (live or a resync's snapshot) last confirmed the row (shared.resync).
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GoalView(Base):
    """A goal as its latest event (by the goal's version) describes it.

    Completed and reopened events carry no title or dates: when one arrives before the
    goal's snapshot, the row starts with those unknown (NULL) and the snapshot fills them.
    """

    __tablename__ = "goal_views"
    __table_args__ = (Index("ix_goal_views_user_id", "user_id"),)

    goal_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(Text)
    period: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)
    # When an event (live or a resync's snapshot) last confirmed the row (shared.resync).
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeletedGoal(Base):
    """Goals deleted for good: a stale event about one, delivered late, must not revive it."""

    __tablename__ = "deleted_goals"
    __table_args__ = (Index("ix_deleted_goals_user_id", "user_id"),)

    goal_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    deleted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())


class PostView(Base):
    """A published diary post: its title and date are what a story draws on.

    `version` is the post's version in diary's event; NULL for events from before diary
    carried one.
    """

    __tablename__ = "post_views"
    __table_args__ = (Index("ix_post_views_author_id", "author_id"),)

    post_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    author_id: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int | None] = mapped_column(Integer)
    # When an event (live or a resync's snapshot) last confirmed the row (shared.resync).
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WithdrawnPost(Base):
    """Posts unpublished or deleted, at the version that did it: a publish event delivered
    late (an older version) must not bring one back."""

    __tablename__ = "withdrawn_posts"
    __table_args__ = (Index("ix_withdrawn_posts_author_id", "author_id"),)

    post_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    author_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[int | None] = mapped_column(Integer)
    withdrawn_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
