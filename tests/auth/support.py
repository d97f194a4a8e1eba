"""Plain helpers for auth's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from services.auth.models import User
from shared.db import Database

PASSWORD = "a long and uncommon passphrase"


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
