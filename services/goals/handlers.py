"""What goals does when other services' events arrive."""

from __future__ import annotations

from services.goals.usecases import forget_user
from shared import resync
from shared.consumer import Handlers, each
from shared.db import UnitOfWork
from shared.events import Event, UserDeleted
from shared.revocations import on_sessions_revoked_handler


def on_user_deleted(uow: UnitOfWork, event: Event[UserDeleted]) -> None:
    forget_user(uow.session, user_id=event.data.user_id)


HANDLERS: Handlers = {
    "auth.user.deleted": each(on_user_deleted, reads=("user_id",)),
    "auth.user.sessions_revoked": on_sessions_revoked_handler,
    **resync.answering("goals", askers=("stories",)),
}
