"""What diary does when other services' events arrive."""

from __future__ import annotations

from services.diary.models import Author
from services.diary.usecases import forget_user, remember_author
from shared import resync
from shared.consumer import Handlers, each
from shared.db import UnitOfWork
from shared.events import Event, UserDeleted, UserProfile
from shared.revocations import on_sessions_revoked_handler


def on_user_profile(uow: UnitOfWork, event: Event[UserProfile]) -> None:
    remember_author(uow.session, profile=event.data, as_of=event.time)


def on_user_deleted(uow: UnitOfWork, event: Event[UserDeleted]) -> None:
    forget_user(uow.session, user_id=event.data.user_id)


def on_profile_snapshot(uow: UnitOfWork, event: Event[UserProfile]) -> None:
    """A resync's snapshot: applied as the live profile, and its author row confirmed."""
    remember_author(uow.session, profile=event.data, as_of=event.time)
    resync.confirm(uow.session, Author, event.data.user_id)


# The fields each handler reads (its contract with the producer).
AUTHOR_FIELDS = ("user_id", "name", "image")

HANDLERS: Handlers = {
    "auth.user.registered": each(on_user_profile, reads=AUTHOR_FIELDS),
    "auth.user.updated": each(on_user_profile, reads=AUTHOR_FIELDS),
    "auth.user.deleted": each(on_user_deleted, reads=("user_id",)),
    "auth.user.sessions_revoked": on_sessions_revoked_handler,
    "auth.user.snapshot": each(on_profile_snapshot, reads=AUTHOR_FIELDS),
    **resync.completing({"auth": resync.sweeper(Author)}),
    **resync.answering("diary", askers=("stories",)),
}
