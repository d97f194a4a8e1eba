"""What every feature does to a user the same way: its email normalised, its public profile
announced, its profile changed, its access tokens revoked, the user deleted. A leaf:
features import it, it imports no feature.

These run inside the caller's open unit of work and only flush; the use case commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from services.auth import tokens
from services.auth.models import User
from shared.db import UnitOfWork, utcnow
from shared.pagination import walk
from shared.revocations import SESSIONS_REVOKED, record_revocation

# What a client may change about itself; counters and the score move only through events.
PROFILE_FIELDS = (
    "name", "image", "current_role", "experience_level", "industry", "years_of_experience",
    "current_skills", "target_skills", "bio", "current_goals",
)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def public_profile(user: User) -> dict[str, Any]:
    """The event payload (shared.events.UserProfile): what other services may know."""
    return {
        "user_id": user.id, "name": user.name, "image": user.image,
        "current_role": user.current_role, "experience_level": user.experience_level.value,
        "industry": user.industry, "years_of_experience": user.years_of_experience,
        "current_skills": list(user.current_skills), "target_skills": list(user.target_skills),
        "bio": user.bio, "current_goals": list(user.current_goals),
    }


# A resync's answer (shared.resync): every user's public profile, by id.
# Profiles carry no version: consumers keep the one raised last (the event's time). A
# profile change takes the user's row lock before its event is raised, so reading the page
# FOR SHARE waits for changes in flight and stamps each snapshot after them, and any later
# change is raised after this page's transaction: a snapshot never passes for newer than a
# change it did not see.
profile_snapshots = walk(select(User).with_for_update(read=True), User.id,
                                 public_profile)


def change_profile(uow: UnitOfWork, user: User, changes: dict[str, Any]) -> None:
    """Apply profile changes; auth.user.updated is announced only if something changed."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"not a profile field: {sorted(unknown)}")
    changed = False
    for name, value in changes.items():
        if getattr(user, name) != value:
            setattr(user, name, value)
            changed = True
    if changed:
        uow.session.flush()
        uow.publish("auth.user.updated", public_profile(user))


def delete_user(uow: UnitOfWork, user_id: str) -> None:
    """The user and everything of theirs here goes (FK cascade); other services hear of it.

    The tombstone makes this service, too, refuse the user's still-unexpired access tokens
    and ignore late events about them.
    """
    uow.session.execute(delete(User).where(User.id == user_id))
    tombstones = uow.db.tombstones
    uow.session.execute(insert(tombstones).values(user_id=user_id).on_conflict_do_nothing())
    uow.publish("auth.user.deleted", {"user_id": user_id, "deleted_at": utcnow()})


@dataclass(frozen=True)
class Revocation:
    user_id: str
    revoked_at: datetime


def revoke_access(uow: UnitOfWork, user_id: str) -> Revocation:
    """Every access token of the user issued until now is refused: here once the caller
    commits, elsewhere once `auth.user.sessions_revoked` is applied (within a second).

    Called after the sessions are deleted, so a refresh that held one of them has finished
    (its row lock) and its token, issued before this instant, is refused too. The cutoff is
    read from the clock that stamps `iat` (`tokens.now_us`), to the microsecond.
    """
    revoked_at = tokens.instant(tokens.now_us())
    record_revocation(uow, user_id=user_id, revoked_at=revoked_at)
    uow.publish(SESSIONS_REVOKED, {"user_id": user_id, "revoked_at": revoked_at})
    return Revocation(user_id, revoked_at)
