"""Plain helpers for auth's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from services.auth.models import User
from shared.db import Database

PASSWORD = "a long and uncommon passphrase"
_addresses = iter(range(1, 1 << 24))


def client_ip() -> str:
    """A client address no other test sends requests from (as X-Forwarded-For)."""
    n = next(_addresses)
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}@example.com"


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def load_user(db: Database, user_id: str) -> User | None:
    with db.sessions() as session:
        return session.scalars(select(User).where(User.id == user_id)).first()


def outbox_events(db: Database, type_: str, user_id: str) -> list[dict[str, Any]]:
    """Envelopes of `type_` about `user_id` in auth's outbox, oldest first."""
    outbox = db.outbox
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.payload)
            .where(outbox.c.type == type_, outbox.c.payload["subject"].astext == user_id)
            .order_by(outbox.c.seq)
        ).scalars()
        return [dict(row) for row in rows]
