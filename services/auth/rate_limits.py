"""Abuse limits on what costs someone else something: mails with links (password reset and
email verification) per email address and per client address, and registrations per client
address. Counted in PostgreSQL (auth.rate_limit), so every worker of every instance shares
one count, the database clock being the only clock (as services.auth.throttle's login
limits are).

A request takes its slot with one atomic upsert per (kind, key) that only counts while under
the limit (`INSERT ... ON CONFLICT DO UPDATE SET n = n + 1 WHERE n < limit RETURNING n`): no
read-then-write, so concurrent requests cannot outrun a limit; the row stays locked until
the caller's transaction ends. A window starts at the first request of a (kind, key) and
lasts `window_s`; the first request after it starts a new one.

- Mails: every request counts (known email or not, mail sent or not), so the count says
  nothing about who has an account. Past either limit the route answers exactly as before
  (202, same body) and queues no mail. The address's slot is taken first, then the client's
  (one lock order for every request); if the client's is refused the address's is given
  back, so a refused request counts nowhere.
- Registrations: past the client's limit, 429 with Retry-After (seconds until the window
  ends, when a slot frees). The slot is committed before the registration goes on (the
  documented exception to the transaction rule, as login's attempt is): a registration that
  then fails (email taken, a lost race) still counts, so hammering register gets a client
  nowhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.auth.models import RateLimit
from shared.config import env_int
from shared.errors import TooManyRequests

MAIL_ADDRESS, MAIL_CLIENT, REGISTER_CLIENT = "mail_address", "mail_client", "register_client"
TOO_MANY_REGISTRATIONS = "Too many registrations from this address; try again later"


@dataclass(frozen=True)
class AbuseLimits:
    mail_per_address: int = 3  # MAIL_MAX_PER_ADDRESS: reset + verification mails
    mail_per_client: int = 20  # MAIL_MAX_PER_CLIENT
    register_per_client: int = 10  # REGISTER_MAX_PER_CLIENT
    window_s: int = 3600  # ABUSE_WINDOW_SECONDS
    mail_cooldown_s: int = 60  # MAIL_COOLDOWN_SECONDS: one link per user in this long

    @classmethod
    def from_env(cls) -> AbuseLimits:
        return cls(
            mail_per_address=env_int("MAIL_MAX_PER_ADDRESS", cls.mail_per_address),
            mail_per_client=env_int("MAIL_MAX_PER_CLIENT", cls.mail_per_client),
            register_per_client=env_int("REGISTER_MAX_PER_CLIENT", cls.register_per_client),
            window_s=env_int("ABUSE_WINDOW_SECONDS", cls.window_s),
            mail_cooldown_s=env_int("MAIL_COOLDOWN_SECONDS", cls.mail_cooldown_s),
        )

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_s)

    @property
    def mail_cooldown(self) -> timedelta:
        return timedelta(seconds=self.mail_cooldown_s)


def take_mail(session: Session, *, email: str, client: str, limits: AbuseLimits) -> bool:
    """One mail slot for the address and one for the client; False (and nothing counted)
    past either limit."""
    if not _take(session, MAIL_ADDRESS, email, limits.mail_per_address, limits.window):
        return False
    if _take(session, MAIL_CLIENT, client, limits.mail_per_client, limits.window):
        return True
    session.execute(update(RateLimit)
                    .where(RateLimit.kind == MAIL_ADDRESS, RateLimit.key == email,
                           RateLimit.n > 0)
                    .values(n=RateLimit.n - 1))
    return False


def take_registration(session: Session, *, client: str, limits: AbuseLimits) -> None:
    """One registration slot for the client, or TooManyRequests with Retry-After."""
    if not _take(session, REGISTER_CLIENT, client, limits.register_per_client, limits.window):
        raise TooManyRequests(TOO_MANY_REGISTRATIONS, retry_after=_seconds_left(
            session, REGISTER_CLIENT, client, limits.window))


def take_slot(session: Session, model: Any, counter: str, identity: dict[str, str],
              limit: int, window: timedelta) -> bool:
    """One slot of a windowed counter row (`model` keyed by the `identity` columns, counting
    in `counter`, with a `window_started_at`), atomically: a new or expired window starts at
    1, a live one counts up only while under `limit` (else no row comes back). The login
    throttle counts with it too."""
    count, started = getattr(model, counter), model.window_started_at
    expired = started <= func.now() - window
    statement = (
        insert(model)
        .values(**identity, **{counter: 1}, window_started_at=func.now())
        .on_conflict_do_update(
            index_elements=[getattr(model, column) for column in identity],
            set_={counter: case((expired, 1), else_=count + 1),
                  "window_started_at": case((expired, func.now()), else_=started)},
            where=or_(expired, count < limit),
        )
        .returning(count)
    )
    return session.execute(statement).first() is not None


def seconds_left(session: Session, model: Any, identity: dict[str, str],
                 window: timedelta) -> int:
    """Seconds until the counter row's window ends (at least 1): a Retry-After."""
    left = session.scalar(
        select(func.extract("epoch", model.window_started_at + window - func.now()))
        .where(*[getattr(model, column) == value for column, value in identity.items()]))
    return max(1, math.ceil(float(left or 0)))


def _take(session: Session, kind: str, key: str, limit: int, window: timedelta) -> bool:
    return limit > 0 and take_slot(session, RateLimit, "n", {"kind": kind, "key": key},
                                   limit, window)


def _seconds_left(session: Session, kind: str, key: str, window: timedelta) -> int:
    return seconds_left(session, RateLimit, {"kind": kind, "key": key}, window)


def forget_stale(session: Session, *, older_than: timedelta = timedelta(days=1)) -> int:
    """Counters whose window ended long ago say nothing any more (pruned by the worker with
    the login counters; keep ABUSE_WINDOW_SECONDS under a day)."""
    result = session.execute(delete(RateLimit).where(
        RateLimit.window_started_at < func.now() - older_than))
    return int(getattr(result, "rowcount", 0) or 0)
