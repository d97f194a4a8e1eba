"""Brute-force protection for logins: attempts counted per account and per client address
in PostgreSQL (auth.login_throttle), so every worker of every instance shares one count.

An attempt takes its slot before the password is checked, with one atomic upsert per key
that only counts while under the limit: parallel guesses cannot all slip in under it, and
past it even the right password gets 429 until the window (which starts at the first
failure) ends. A success gives its slots back: the account starts over, the client keeps
its earlier failures. Unknown emails are counted like known ones, so a 429 says nothing
about who has an account. The database clock is the only clock, so instances agree.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.orm import Session

from services.auth import rate_limits
from services.auth.models import LoginThrottle
from shared.config import env_int
from shared.db import Database
from shared.errors import TooManyRequests

log = logging.getLogger(__name__)
TOO_MANY = "Too many failed logins; try again later"


@dataclass(frozen=True)
class Limits:
    per_account: int = 10
    per_client: int = 50
    window_s: int = 15 * 60

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            per_account=env_int("LOGIN_MAX_FAILURES_PER_ACCOUNT", cls.per_account),
            per_client=env_int("LOGIN_MAX_FAILURES_PER_CLIENT", cls.per_client),
            window_s=env_int("LOGIN_WINDOW_SECONDS", cls.window_s),
        )


def client_address(forwarded_for: str | None, remote_addr: str | None) -> str:
    """The first X-Forwarded-For hop (our gateway sets it to the peer it sees), else ours.

    IPv6 clients count per /64, the block one subscriber usually holds, so hopping
    addresses inside it does not reset the count.
    """
    first_hop = (forwarded_for or "").split(",")[0].strip()
    for candidate in (first_hop, remote_addr or ""):
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return str(ipaddress.IPv6Network((address, 64), strict=False))
        return str(address)
    return "unknown"


def _keys(email: str, client: str, limits: Limits) -> list[tuple[str, int]]:
    # Always account first, then client: concurrent attempts lock rows in one order.
    return [(f"account:{email}", limits.per_account), (f"client:{client}", limits.per_client)]


def take_attempt(session: Session, *, email: str, client: str, limits: Limits) -> None:
    """Count one attempt against the account and the client; past either limit raise
    TooManyRequests (the caller's rollback then leaves nothing counted)."""
    window = timedelta(seconds=limits.window_s)
    for key, limit in _keys(email, client, limits):
        if not _take(session, key, limit, window):
            raise TooManyRequests(TOO_MANY, retry_after=_seconds_left(session, key, window))


def give_back(session: Session, *, email: str, client: str) -> None:
    """After a success: the account's count starts over, the client's loses this attempt."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == f"account:{email}"))
    session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == f"client:{client}", LoginThrottle.failures > 0)
        .values(failures=LoginThrottle.failures - 1))


def _take(session: Session, key: str, limit: int, window: timedelta) -> bool:
    return rate_limits.take_slot(session, LoginThrottle, "failures", {"key": key}, limit,
                                 window)


def _seconds_left(session: Session, key: str, window: timedelta) -> int:
    return rate_limits.seconds_left(session, LoginThrottle, {"key": key}, window)


def forget_stale(session: Session, *, older_than: timedelta = timedelta(days=1)) -> int:
    """Counters whose window ended long ago say nothing any more."""
    result = session.execute(delete(LoginThrottle).where(
        LoginThrottle.window_started_at < func.now() - older_than))
    return int(getattr(result, "rowcount", 0) or 0)


def forget_stale_attempts(_settings: Any, db: Database, stop: threading.Event) -> None:
    """Worker loop: prune the login throttle and the abuse limits' counters
    (services.auth.rate_limits) at start and then hourly."""
    while not stop.is_set():
        try:
            with db.sessions.begin() as session:
                forget_stale(session)
                rate_limits.forget_stale(session)
        except Exception as exc:  # noqa: BLE001 - housekeeping must never stop the worker
            log.warning("could not prune login throttle", extra={"error": repr(exc)})
        stop.wait(3600)
