"""What the accounts feature does: register, log in, refresh, log out, my profile, public
profiles. Plain functions of a unit of work; no Flask.

Each takes a unit of work it has not entered, opens it and commits it (the transaction rule
of shared/db.py); reads open it read-only.

Every change another service cares about (a profile registered, changed or deleted) records
its event in the same transaction. Failed logins all look the same, whatever failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.auth import passwords, rate_limits, throttle, users
from services.auth.models import User, UserSession
from services.auth.tokens import AccessToken, TokenIssuer, new_secret, secret_hash
from services.auth.verification import queue_verification
from shared.db import UnitOfWork, fetch_one, first_or_not_found, utcnow
from shared.errors import Conflict, Unauthorized

BAD_CREDENTIALS = "The email or password is incorrect"
BAD_SESSION = "The session is unknown or has expired; log in again"


@dataclass(frozen=True)
class Login:
    access: AccessToken
    session_token: str  # the secret itself: shown to the client once, stored only hashed
    session_expires: datetime
    user: User


def register(uow: UnitOfWork, *, email: str, password: str, name: str | None = None,
             public_base_url: str, client: str, limits: rate_limits.AbuseLimits) -> User:
    """A new account, announced, with a verification link mailed to it.

    At most `limits.register_per_client` a window from one client address (429 past it).
    Like login's attempt, the slot is committed before the registration goes on: an
    exception to the transaction rule (shared/db.py), so a registration that then fails
    (email taken, a lost race) still counts, and the counter's row is not held locked while
    the password is hashed. A request refused by the schema or the password policy never
    reaches the database and is not counted.
    """
    email = users.normalize_email(email)
    passwords.check_policy(password, email=email)
    with uow:
        rate_limits.take_registration(uow.session, client=client, limits=limits)
        uow.commit()  # the documented exception: the registration counts whatever follows
        if uow.session.scalars(select(User.id).where(User.email == email)).first():
            raise Conflict("An account with this email already exists")
        user = User(email=email, name=name, password=passwords.hash_password(password))
        uow.session.add(user)
        try:
            uow.session.flush()
        except IntegrityError as exc:  # a concurrent registration won the race
            raise Conflict("An account with this email already exists") from exc
        uow.publish("auth.user.registered", users.public_profile(user))
        queue_verification(uow.session, user, public_base_url=public_base_url)
        uow.commit()
    return user


def login(
    uow: UnitOfWork,
    *,
    email: str,
    password: str,
    tokens: TokenIssuer,
    client: str,
    limits: throttle.Limits,
) -> Login:
    """Unknown email, wrong password and password-less (OAuth) user fail alike, in like time.

    The one exception to the transaction rule (shared/db.py): the attempt is committed
    before the password is checked, so a worker dying mid-hash still counts it, parallel
    guesses cannot outrun the limit, and a failure that rolls back keeps it counted.
    """
    email = users.normalize_email(email)
    with uow:
        throttle.take_attempt(uow.session, email=email, client=client, limits=limits)
        uow.commit()  # the documented exception: the attempt counts whatever follows
        user = uow.session.scalars(select(User).where(User.email == email)).first()
        stored = user.password if user is not None else None
        matched = passwords.verify_password(stored, password)  # always hashes, even for no one
        if user is None or not matched:
            raise Unauthorized(BAD_CREDENTIALS)
        throttle.give_back(uow.session, email=email, client=client)
        if stored and passwords.needs_rehash(stored):
            user.password = passwords.hash_password(password)  # parameters raised: upgrade
        secret = new_secret()
        session = UserSession(user_id=user.id, session_token=secret_hash(secret),
                              expires=tokens.session_expiry(utcnow()))
        uow.session.add(session)
        uow.session.flush()
        uow.commit()
    return Login(tokens.access_token(user_id=user.id, session_id=session.id), secret,
                 session.expires, user)


def refresh(uow: UnitOfWork, *, session_token: str, tokens: TokenIssuer) -> AccessToken:
    """Looked up by the token's hash: no secret is ever compared in Python. An expired
    session found on the way is deleted."""
    with uow:
        session = uow.session.scalars(select(UserSession).where(
            UserSession.session_token == secret_hash(session_token))).first()
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
    with uow:
        if session_token:
            uow.session.execute(delete(UserSession).where(
                UserSession.session_token == secret_hash(session_token)))
        elif user_id and session_id:
            uow.session.execute(delete(UserSession).where(
                UserSession.id == session_id, UserSession.user_id == user_id))
        uow.commit()


def logout_all(uow: UnitOfWork, *, user_id: str) -> users.Revocation:
    """End every session of the user (a lost device, a leaked token): none can refresh,
    and the access tokens already handed out are refused by every service (this one at
    once, the others within a second)."""
    with uow:
        uow.session.execute(delete(UserSession).where(UserSession.user_id == user_id))
        revocation = users.revoke_access(uow, user_id)
        uow.commit()
    return revocation


def _user(session: Session, user_id: str, *, lock: bool = False) -> User:
    user: User = first_or_not_found(session, select(User).where(User.id == user_id),
                                    "No such user", lock=lock)
    return user


# A profile as it is read (mine or anyone's): a row of every column but the password hash,
# by a statement built once (shared.db.fetch), not a mapped User.
_PROFILE = select(*[column for column in User.__table__.c if column.key != "password"]).where(
    User.__table__.c.id == bindparam("user_id", type_=String))


def get_me(uow: UnitOfWork, *, user_id: str) -> Any:
    return get_public_profile(uow, user_id=user_id)  # the same row: the schema tells them apart


def get_public_profile(uow: UnitOfWork, *, user_id: str) -> Any:
    with uow.read_only():
        return fetch_one(uow.session, _PROFILE, {"user_id": user_id}, "No such user")


def update_me(uow: UnitOfWork, *, user_id: str, **changes: Any) -> User:
    with uow:
        user = _user(uow.session, user_id, lock=True)
        users.change_profile(uow, user, changes)
        uow.commit()
    return user


def delete_me(uow: UnitOfWork, *, user_id: str) -> None:
    """My account and everything of mine, here (cascade) and elsewhere (the event)."""
    with uow:
        _user(uow.session, user_id, lock=True)
        users.delete_user(uow, user_id)
        uow.commit()
