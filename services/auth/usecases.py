"""What the auth service does for its callers. Plain functions of a unit of work; no Flask.

Every change another service cares about (a profile registered, changed or deleted) records
its event in the same transaction. Failed logins all look the same, whatever failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.auth import passwords, throttle
from services.auth.models import User, UserSession
from services.auth.tokens import AccessToken, TokenIssuer, new_secret, secret_hash
from shared.db import UnitOfWork, utcnow
from shared.errors import Conflict, NotFound, Unauthorized

# What a client may change about itself; counters and the score move only through events.
PROFILE_FIELDS = (
    "name", "image", "current_role", "experience_level", "industry", "years_of_experience",
    "current_skills", "target_skills", "bio", "current_goals",
)
BAD_CREDENTIALS = "The email or password is incorrect"
BAD_SESSION = "The session is unknown or has expired; log in again"


@dataclass(frozen=True)
class Login:
    access: AccessToken
    session_token: str  # the secret itself: shown to the client once, stored only hashed
    session_expires: datetime
    user: User


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


def register(uow: UnitOfWork, *, email: str, password: str, name: str | None = None) -> User:
    email = normalize_email(email)
    passwords.check_policy(password, email=email)
    if uow.session.scalars(select(User.id).where(User.email == email)).first():
        raise Conflict("An account with this email already exists")
    user = User(email=email, name=name, password=passwords.hash_password(password))
    uow.session.add(user)
    try:
        uow.session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict("An account with this email already exists") from exc
    uow.publish("auth.user.registered", public_profile(user))
    from services.auth import recovery  # imports this module: resolved at call time

    recovery.queue_verification(uow.session, user)
    uow.commit()
    return user


def login(
    uow: UnitOfWork,
    *,
    email: str,
    password: str,
    tokens: TokenIssuer,
    client: str,
    limits: throttle.Limits | None = None,
) -> Login:
    """Unknown email, wrong password and password-less (OAuth) user fail alike, in like time.

    The attempt is counted (and committed) before the password is checked, so a worker
    dying mid-hash still counts it and parallel guesses cannot outrun the limit.
    """
    email = normalize_email(email)
    throttle.take_attempt(uow.session, email=email, client=client,
                          limits=limits or throttle.Limits())
    uow.commit()
    user = uow.session.scalars(select(User).where(User.email == email)).first()
    stored = user.password if user is not None else None
    matched = passwords.verify_password(stored, password)  # always hashes, even for no one
    if user is None or not matched:
        raise Unauthorized(BAD_CREDENTIALS)
    throttle.give_back(uow.session, email=email, client=client)
    if stored and passwords.needs_rehash(stored):
        user.password = passwords.hash_password(password)  # parameters raised since: upgrade
    secret = new_secret()
    session = UserSession(user_id=user.id, session_token=secret_hash(secret),
                      expires=tokens.session_expiry(utcnow()))
    uow.session.add(session)
    uow.session.flush()
    uow.commit()
    return Login(tokens.access_token(user_id=user.id, session_id=session.id), secret,
                 session.expires, user)


def refresh(uow: UnitOfWork, *, session_token: str, tokens: TokenIssuer) -> AccessToken:
    """Looked up by the token's hash: no secret is ever compared in Python."""
    session = uow.session.scalars(
        select(UserSession).where(UserSession.session_token == secret_hash(session_token))).first()
    if session is None:
        raise Unauthorized(BAD_SESSION)
    if session.expires <= utcnow():
        uow.session.delete(session)
        uow.commit()
        raise Unauthorized(BAD_SESSION)
    return tokens.access_token(user_id=session.user_id, session_id=session.id)


def logout(
    uow: UnitOfWork,
    *,
    session_token: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
) -> None:
    """End one session, named by its secret or by an access token's (sub, sid); idempotent."""
    if session_token:
        uow.session.execute(
            delete(UserSession).where(UserSession.session_token == secret_hash(session_token)))
    elif user_id and session_id:
        uow.session.execute(
            delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user_id))
    uow.commit()


def logout_all(uow: UnitOfWork, *, user_id: str) -> None:
    """End every session of the user (a lost device, a leaked token): none can refresh.

    Access tokens already handed out stay valid until they expire, minutes at most.
    """
    uow.session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    uow.commit()


def _user(session: Session, user_id: str, *, lock: bool = False) -> User:
    query = select(User).where(User.id == user_id)
    if lock:
        query = query.with_for_update()
    user = session.scalars(query).first()
    if user is None:
        raise NotFound("No such user")
    return user


def get_me(session: Session, *, user_id: str) -> User:
    return _user(session, user_id)


def get_public_profile(session: Session, *, user_id: str) -> User:
    return _user(session, user_id)


def update_me(uow: UnitOfWork, *, user_id: str, **changes: Any) -> User:
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"not a profile field: {sorted(unknown)}")
    user = _user(uow.session, user_id, lock=True)
    changed = False
    for name, value in changes.items():
        if getattr(user, name) != value:
            setattr(user, name, value)
            changed = True
    if changed:
        uow.session.flush()
        uow.publish("auth.user.updated", public_profile(user))
    uow.commit()
    return user


def delete_me(uow: UnitOfWork, *, user_id: str) -> None:
    """The user and everything of theirs here goes (FK cascade); other services hear of it.

    The tombstone makes this service, too, refuse the user's still-unexpired access tokens
    and ignore late events about them.
    """
    _user(uow.session, user_id, lock=True)
    uow.session.execute(delete(User).where(User.id == user_id))
    tombstones = uow.db.tombstones
    uow.session.execute(insert(tombstones).values(user_id=user_id).on_conflict_do_nothing())
    uow.publish("auth.user.deleted", {"user_id": user_id, "deleted_at": utcnow()})
    uow.commit()
