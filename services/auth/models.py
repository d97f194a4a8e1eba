"""The auth schema: the seed's User, Account, Session (`UserSession`, so it never shadows
SQLAlchemy's Session), VerificationToken and PasswordReset, the achievement ledger, and the
messaging tables every service has.

Secrets are stored as SHA-256 hashes (session, verification and reset tokens) or argon2id
hashes (passwords): a leaked table gives nobody a way in.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
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
from shared.events import EXPERIENCE_LEVELS, GOAL_PERIODS
from shared.ids import new_id


class Base(EagerDefaults, DeclarativeBase):
    metadata = service_metadata("auth")


class ExperienceLevel(enum.StrEnum):
    INTERN = "INTERN"
    JUNIOR = "JUNIOR"
    MID_LEVEL = "MID_LEVEL"
    SENIOR = "SENIOR"
    LEAD = "LEAD"
    MANAGER = "MANAGER"
    DIRECTOR = "DIRECTOR"
    VP = "VP"
    C_LEVEL = "C_LEVEL"


assert tuple(ExperienceLevel) == EXPERIENCE_LEVELS, "must match the event contract"

ID = String(32)
TOKEN_HASH = String(64)  # hex SHA-256


def _owner() -> Mapped[str]:
    """The owning user; the seed's onDelete: Cascade, and indexed for per-user lookups."""
    return mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"), index=True)


def _text_list() -> Mapped[list[str]]:
    return mapped_column(ARRAY(Text), default=list, server_default=text("'{}'::text[]"))


class User(Timestamps, Base):
    """A person, with their career profile and the counters other services' events move.

    experienceLevel is required by the seed but registration does not ask for it: new users
    start at JUNIOR (the least presumptuous level for a growth diary) and change it with
    PATCH /auth/me.
    """

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(Text, unique=True)  # stored lowercased
    name: Mapped[str | None] = mapped_column(Text)
    password: Mapped[str | None] = mapped_column(Text)  # argon2id hash; None for OAuth users
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    email_verified: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    image: Mapped[str | None] = mapped_column(Text)

    current_role: Mapped[str | None] = mapped_column(Text)
    experience_level: Mapped[ExperienceLevel] = mapped_column(
        Enum(ExperienceLevel, name="experience_level"), default=ExperienceLevel.JUNIOR,
        server_default=ExperienceLevel.JUNIOR.value)
    industry: Mapped[str | None] = mapped_column(Text)
    years_of_experience: Mapped[int | None] = mapped_column(Integer)
    current_skills: Mapped[list[str]] = _text_list()
    target_skills: Mapped[list[str]] = _text_list()
    bio: Mapped[str | None] = mapped_column(Text)
    current_goals: Mapped[list[str]] = _text_list()

    # Moved only by events (goals completed, stories generated), never by clients.
    achievement_score: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    daily_generation_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_generation_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))



class Account(Base):
    """An OAuth provider account (Auth.js); token field names are the providers' own."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("provider", "provider_account_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    user_id: Mapped[str] = _owner()
    type: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(Text)
    provider_account_id: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    access_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)  # Unix seconds
    token_type: Mapped[str | None] = mapped_column(Text)
    scope: Mapped[str | None] = mapped_column(Text)
    id_token: Mapped[str | None] = mapped_column(Text)
    session_state: Mapped[str | None] = mapped_column(Text)


class UserSession(Base):
    """A login: its id is the `sid` of the access tokens it refreshes."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    session_token: Mapped[str] = mapped_column(TOKEN_HASH, unique=True)
    user_id: Mapped[str] = _owner()
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VerificationToken(Base):
    """Auth.js's email token; Prisma gives it no id, so (identifier, token) is the key."""

    __tablename__ = "verification_tokens"

    identifier: Mapped[str] = mapped_column(Text, primary_key=True)
    token: Mapped[str] = mapped_column(TOKEN_HASH, primary_key=True, unique=True)
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PasswordReset(Base):
    __tablename__ = "password_resets"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    user_id: Mapped[str] = _owner()
    token: Mapped[str] = mapped_column(TOKEN_HASH, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())


class AchievementAward(Base):
    """One row per goal ever seen: what it is worth now and which goal version said so.

    Keyed by goal id, so redelivered events cannot award twice; the version lets a late,
    older event be recognised and ignored.
    """

    __tablename__ = "achievement_awards"

    goal_id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = _owner()
    period: Mapped[str] = mapped_column(Enum(*GOAL_PERIODS, name="goal_period"))
    points: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    awarded: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


class OutgoingMail(Base):
    """Mail waiting for the worker: requests only queue it, so a down SMTP server delays
    mail and loses none. The body (which may carry a one-time link) is cleared once sent."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        Index("ix_mail_outbox_due", "next_attempt_at", postgresql_where=text("sent_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginThrottle(Base):
    """Failed logins per key ("account:<email>" or "client:<address>"), shared by every
    worker and instance because it lives in the database, not in process memory."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    window_started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateLimit(Base):
    """Requests counted per kind ("mail_address", "mail_client", "register_client") and key
    (an address or a client) in a window that starts at the first request: the abuse limits
    of services.auth.rate_limits, shared by every worker and instance like LoginThrottle."""

    __tablename__ = "rate_limit"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    n: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (Index("ix_rate_limit_window_started_at", "window_started_at"),)
