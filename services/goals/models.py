"""The goals schema: the seed's Goal, plus the messaging tables every service has."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Enum, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import EagerDefaults, Timestamps, service_metadata
from shared.ids import new_id


class Base(EagerDefaults, DeclarativeBase):
    metadata = service_metadata("goals")


class GoalPeriod(enum.StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"
    YEARLY = "YEARLY"


class GoalStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"


class Goal(Timestamps, Base):
    __tablename__ = "goals"
    __table_args__ = (
        Index("ix_goals_user_id_status", "user_id", "status"),
        Index("ix_goals_user_id_period", "user_id", "period"),
        # Keyset pagination of one user's list, newest first.
        Index("ix_goals_user_id_created_at_id", "user_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # A plain string: the user lives in auth's schema; deletion arrives as an event.
    user_id: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    period: Mapped[GoalPeriod] = mapped_column(Enum(GoalPeriod, name="goal_period"))
    status: Mapped[GoalStatus] = mapped_column(
        Enum(GoalStatus, name="goal_status"), default=GoalStatus.ACTIVE,
        server_default=GoalStatus.ACTIVE.value,
    )
    start_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped by every change, carried by every event: lets consumers ignore stale ones.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
