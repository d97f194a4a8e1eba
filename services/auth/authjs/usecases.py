"""What the Auth.js adapter does: one plain function per adapter method, no Flask. Each
opens and commits the unit of work it is given (reads open it read-only); the users rules
it shares with the rest of auth (`services.auth.users`) only flush.

Each keeps the method's own semantics (a lookup that finds nothing returns None, as Auth.js
expects) and does what it is told: it never links an account to a user by email on its own.
Session and verification tokens arrive as secrets chosen by Auth.js; only their SHA-256 is
stored, so the caller's token is echoed back from the request, never read from the table.
Users go through the same events and tombstone as the rest of auth (`services.auth.users`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.auth import users
from services.auth.models import Account, User, UserSession, VerificationToken
from services.auth.tokens import secret_hash
from shared.db import UnitOfWork
from shared.errors import Conflict, Invalid, NotFound

FOREIGN_KEY_VIOLATION = "23503"
NO_SUCH_USER = {"userId": ["No user with this id"]}
ACCOUNT_FIELDS = (
    "type", "refresh_token", "access_token", "expires_at", "token_type", "scope", "id_token",
    "session_state",
)


@dataclass(frozen=True)
class AdapterSession:
    """A session as Auth.js sees it: with the token it chose, which we do not keep."""

    id: str
    session_token: str
    user_id: str
    expires: datetime


@dataclass(frozen=True)
class SessionAndUser:
    session: AdapterSession
    user: User


@dataclass(frozen=True)
class IssuedToken:
    """A verification token as Auth.js sees it (the token is the caller's, not the hash)."""

    identifier: str
    token: str
    expires: datetime


def _flush(session: Session, *, conflict: str) -> None:
    """Flush, telling a vanished owner (422) from a duplicate (409)."""
    try:
        session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == FOREIGN_KEY_VIOLATION:
            raise Invalid(NO_SUCH_USER) from exc
        raise Conflict(conflict) from exc


def _email_taken(session: Session, email: str, *, other_than: str | None = None) -> bool:
    query = select(User.id).where(User.email == email)
    if other_than:
        query = query.where(User.id != other_than)
    return session.scalars(query).first() is not None


def _locked_user(session: Session, user_id: str) -> User | None:
    return session.scalars(select(User).where(User.id == user_id).with_for_update()).first()


# -- users ---------------------------------------------------------------------------------


def create_user(uow: UnitOfWork, *, email: str, name: str | None = None,
                image: str | None = None, email_verified: datetime | None = None) -> User:
    """A password-less user (OAuth or email sign-in), announced like a registration.

    The id is ours (a cuid), whatever id Auth.js proposed, as the Prisma adapter does.
    """
    email = users.normalize_email(email)
    with uow:
        if _email_taken(uow.session, email):
            raise Conflict("A user with this email already exists")
        user = User(email=email, name=name, image=image, email_verified=email_verified,
                    verified=email_verified is not None)
        uow.session.add(user)
        _flush(uow.session, conflict="A user with this email already exists")
        uow.publish("auth.user.registered", users.public_profile(user))
        uow.commit()
    return user


def get_user(uow: UnitOfWork, *, user_id: str) -> User | None:
    with uow.read_only():
        return uow.session.get(User, user_id)


def get_user_by_email(uow: UnitOfWork, *, email: str) -> User | None:
    normalized = users.normalize_email(email)
    with uow.read_only():
        return uow.session.scalars(select(User).where(User.email == normalized)).first()


def get_user_by_account(uow: UnitOfWork, *, provider: str,
                        provider_account_id: str) -> User | None:
    with uow.read_only():
        return uow.session.scalars(
            select(User).join(Account, Account.user_id == User.id)
            .where(Account.provider == provider,
                   Account.provider_account_id == provider_account_id)).first()


def update_user(uow: UnitOfWork, *, user_id: str, **changes: Any) -> User:
    """Email fields change here; the profile (name, image) through `users.change_profile`,
    so auth.user.updated is announced by the one rule auth has for it."""
    with uow:
        user = _locked_user(uow.session, user_id)
        if user is None:
            raise NotFound("No such user")
        if "email" in changes:
            email = users.normalize_email(changes.pop("email"))
            if email != user.email:
                if _email_taken(uow.session, email, other_than=user_id):
                    raise Conflict("A user with this email already exists")
                user.email = email
        if "email_verified" in changes:
            user.email_verified = changes.pop("email_verified")
            user.verified = user.email_verified is not None
        _flush(uow.session, conflict="A user with this email already exists")
        users.change_profile(uow, user, changes)
        uow.commit()
    return user


def delete_user(uow: UnitOfWork, *, user_id: str) -> User | None:
    """As DELETE /auth/me (`users.delete_user`: cascade, tombstone, auth.user.deleted);
    returns the user as it was, or None if there was none, so a retried call is harmless."""
    with uow:
        user = _locked_user(uow.session, user_id)
        if user is None:
            return None
        users.delete_user(uow, user_id)
        uow.commit()
    return user


# -- accounts ------------------------------------------------------------------------------


def link_account(uow: UnitOfWork, *, user_id: str, provider: str, provider_account_id: str,
                 **fields: Any) -> Account:
    unknown = set(fields) - set(ACCOUNT_FIELDS)
    if unknown:
        raise TypeError(f"not an account field: {sorted(unknown)}")
    with uow:
        account = Account(user_id=user_id, provider=provider,
                          provider_account_id=provider_account_id, **fields)
        uow.session.add(account)
        _flush(uow.session, conflict="This provider account is already linked")
        uow.commit()
    return account


def _account_is(provider: str, provider_account_id: str) -> ColumnElement[bool]:
    return and_(Account.provider == provider, Account.provider_account_id == provider_account_id)


def get_account(uow: UnitOfWork, *, provider: str, provider_account_id: str) -> Account | None:
    with uow.read_only():
        return uow.session.scalars(
            select(Account).where(_account_is(provider, provider_account_id))).first()


def unlink_account(uow: UnitOfWork, *, provider: str,
                   provider_account_id: str) -> Account | None:
    with uow:
        account = uow.session.scalars(
            delete(Account).where(_account_is(provider, provider_account_id))
            .returning(Account)).first()
        uow.commit()
    return account


# -- sessions ------------------------------------------------------------------------------


def _as_seen(session: UserSession, token: str) -> AdapterSession:
    return AdapterSession(session.id, token, session.user_id, session.expires)


def create_session(uow: UnitOfWork, *, session_token: str, user_id: str,
                   expires: datetime) -> AdapterSession:
    with uow:
        session = UserSession(session_token=secret_hash(session_token), user_id=user_id,
                              expires=expires)
        uow.session.add(session)
        _flush(uow.session, conflict="A session with this token already exists")
        uow.commit()
    return _as_seen(session, session_token)


def get_session_and_user(uow: UnitOfWork, *, session_token: str) -> SessionAndUser | None:
    """Expired sessions too: Auth.js checks `expires` itself and then deletes the session."""
    with uow.read_only():
        row = uow.session.execute(
            select(UserSession, User).join(User, User.id == UserSession.user_id)
            .where(UserSession.session_token == secret_hash(session_token))).first()
    if row is None:
        return None
    session, user = row
    return SessionAndUser(_as_seen(session, session_token), user)


def update_session(uow: UnitOfWork, *, session_token: str, expires: datetime | None = None,
                   user_id: str | None = None) -> AdapterSession | None:
    with uow:
        session = uow.session.scalars(select(UserSession).where(
            UserSession.session_token == secret_hash(session_token)).with_for_update()).first()
        if session is None:
            return None
        if expires is not None:
            session.expires = expires
        if user_id is not None:
            session.user_id = user_id
        _flush(uow.session, conflict="The session could not be updated")
        uow.commit()
    return _as_seen(session, session_token)


def delete_session(uow: UnitOfWork, *, session_token: str) -> AdapterSession | None:
    with uow:
        session = uow.session.scalars(
            delete(UserSession).where(UserSession.session_token == secret_hash(session_token))
            .returning(UserSession)).first()
        uow.commit()
    return _as_seen(session, session_token) if session else None


# -- verification tokens -------------------------------------------------------------------


def create_verification_token(uow: UnitOfWork, *, identifier: str, token: str,
                              expires: datetime) -> IssuedToken:
    with uow:
        uow.session.add(VerificationToken(identifier=identifier, token=secret_hash(token),
                                          expires=expires))
        _flush(uow.session, conflict="This verification token already exists")
        uow.commit()
    return IssuedToken(identifier, token, expires)


def use_verification_token(uow: UnitOfWork, *, identifier: str, token: str) -> IssuedToken | None:
    """Delete and return in one statement, so two racing uses cannot both succeed.

    An expired token is returned (and gone) all the same: Auth.js checks `expires` itself.
    """
    with uow:
        expires = uow.session.scalars(
            delete(VerificationToken)
            .where(VerificationToken.identifier == identifier,
                   VerificationToken.token == secret_hash(token))
            .returning(VerificationToken.expires)).first()
        uow.commit()
    return IssuedToken(identifier, token, expires) if expires is not None else None
