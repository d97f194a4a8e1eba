"""Access-token revocations, kept in every service's `revoked_token` table: one row per
user, the latest cutoff (`auth.user.sessions_revoked`). Web processes refuse that user's
tokens issued before it (`shared.tombstones`, told by the table's NOTIFY trigger).

Plumbing identical in every service: auth records its own revocation with
`record_revocation` in the transaction that ends the sessions; goals, diary and stories
register `on_sessions_revoked_handler` (the handler with its declared reads).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from shared.consumer import each
from shared.db import UnitOfWork
from shared.events import Event, SessionsRevoked

SESSIONS_REVOKED = "auth.user.sessions_revoked"


def record_revocation(uow: UnitOfWork, *, user_id: str, revoked_at: datetime) -> None:
    """Refuse the user's tokens issued before `revoked_at`: an upsert that keeps the latest
    cutoff, so redelivered or reordered events never move it back."""
    table = uow.db.revocations
    statement = insert(table).values(user_id=user_id, revoked_at=revoked_at)
    uow.session.execute(statement.on_conflict_do_update(
        index_elements=[table.c.user_id],
        set_={"revoked_at": func.greatest(table.c.revoked_at, statement.excluded.revoked_at)}))


def on_sessions_revoked(uow: UnitOfWork, event: Event[SessionsRevoked]) -> None:
    record_revocation(uow, user_id=event.data.user_id, revoked_at=event.data.revoked_at)


# What goals, diary and stories register for auth.user.sessions_revoked, with its contract.
on_sessions_revoked_handler = each(on_sessions_revoked, reads=("user_id", "revoked_at"))
