"""What goals does when other services' events arrive."""

from __future__ import annotations

from services.goals.usecases import forget_user
from shared.consumer import Handler
from shared.db import UnitOfWork
from shared.events import Event


def on_user_deleted(uow: UnitOfWork, event: Event) -> None:
    forget_user(uow.session, user_id=event.data["user_id"])


HANDLERS: dict[str, Handler] = {"auth.user.deleted": on_user_deleted}
