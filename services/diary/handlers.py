"""What diary does when other services' events arrive."""

from __future__ import annotations

from services.diary.usecases import forget_user, remember_author
from shared.consumer import Handler
from shared.db import UnitOfWork
from shared.events import Event


def on_user_profile(uow: UnitOfWork, event: Event) -> None:
    remember_author(uow.session, profile=event.data, as_of=event.time)


def on_user_deleted(uow: UnitOfWork, event: Event) -> None:
    forget_user(uow.session, user_id=event.data["user_id"])


HANDLERS: dict[str, Handler] = {
    "auth.user.registered": on_user_profile,
    "auth.user.updated": on_user_profile,
    "auth.user.deleted": on_user_deleted,
}
