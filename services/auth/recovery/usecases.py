"""Proving an email address and getting back into an account: verification links,
password resets, password changes. Plain functions of a unit of work (each opens and
commits the one it is given); no Flask.

Links carry a 256-bit secret from `secrets`; only its SHA-256 is stored, and a link is
redeemed by one conditional statement (UPDATE/DELETE ... RETURNING), so of any number of
concurrent redemptions exactly one wins. Secrets are looked up by hash in the database,
never compared in Python. Mail is only queued here (services.auth.mail), in the same
transaction, and sent by the worker. Links open front-end pages (PUBLIC_BASE_URL) that
POST the token: a GET that redeemed it would be spent by mail scanners prefetching links.

Who gets a reset link: every account, with a password or not. The link proves control of
the mailbox, which is what Auth.js's email sign-in accepts too, so an OAuth-only user may
use it to set a first password. Redeeming it also marks the email verified, for the same
reason. Requests for unknown emails get the same answer and send nothing.

Mails are limited per email address and per client address (services.auth.rate_limits):
every request counts, known email or not, and past a limit the request is answered alike
and sends nothing. The counters are taken inside the use case's unit of work, after the
user's row is locked (one lock order: user, address, client), and committed with it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from services.auth import mail, passwords, rate_limits, throttle, users
from services.auth.models import PasswordReset, User, UserSession, VerificationToken
from services.auth.tokens import new_secret, secret_hash
from services.auth.users import normalize_email
from services.auth.verification import (
    VERIFICATION_TTL,
    VERIFY_PREFIX,
    identifier_of,
    queue_verification,
)
from shared.db import UnitOfWork, utcnow
from shared.errors import DomainError, Invalid, NotFound

log = logging.getLogger(__name__)
RESET_TTL = timedelta(hours=1)
# One link per user per minute at most (MAIL_COOLDOWN_SECONDS), and a few an hour per address
# and per client (rate_limits): the public reset form must not become a way to flood
# someone's inbox. Within either the request is answered alike and sends nothing.


class InvalidLink(DomainError):
    """400, not 422: the link is what is wrong, not anything the user typed."""

    status, title = 400, "Bad Request"

    def __init__(self) -> None:
        message = "The link is invalid, has expired or has already been used"
        super().__init__(message, errors={"token": [message]})


def _locked_user(session: Session, user_id: str) -> User | None:
    return session.scalars(select(User).where(User.id == user_id).with_for_update()).first()


def verify_email(uow: UnitOfWork, *, token: str) -> None:
    with uow:
        identifier = uow.session.scalar(
            delete(VerificationToken)
            .where(VerificationToken.token == secret_hash(token),
                   VerificationToken.expires > func.now(),
                   VerificationToken.identifier.startswith(VERIFY_PREFIX, autoescape=True))
            .returning(VerificationToken.identifier))
        if identifier is None:
            raise InvalidLink()
        user_id, _, email = identifier.removeprefix(VERIFY_PREFIX).partition(":")
        user = _locked_user(uow.session, user_id)
        if user is None or user.email != email:  # gone, or the link went to another address
            raise InvalidLink()
        _mark_verified(user)
        uow.session.execute(delete(VerificationToken).where(
            VerificationToken.identifier == identifier_of(user)))  # its siblings are moot now
        uow.commit()


def resend_verification(uow: UnitOfWork, *, user_id: str, public_base_url: str,
                        client: str, limits: rate_limits.AbuseLimits) -> None:
    """Answered alike whether or not a mail goes out (already verified, in cooldown, or past
    a mail limit)."""
    with uow:
        user = _locked_user(uow.session, user_id)
        if user is None:
            return
        allowed = rate_limits.take_mail(uow.session, email=user.email, client=client,
                                        limits=limits)
        recent = uow.session.scalar(select(exists().where(
            VerificationToken.identifier == identifier_of(user),
            VerificationToken.expires
            > func.statement_timestamp() + VERIFICATION_TTL - limits.mail_cooldown)))
        if allowed and not recent and not user.verified:
            queue_verification(uow.session, user, public_base_url=public_base_url)
        uow.commit()


def request_password_reset(uow: UnitOfWork, *, email: str, public_base_url: str,
                           client: str, limits: rate_limits.AbuseLimits) -> None:
    """Answered alike for every email: whether an account exists is nobody's business, nor
    whether a limit was reached. Known email or not, the same statements run (the lookup,
    the counters, the cooldown check) and only the mail's insert is left out."""
    email = normalize_email(email)
    with uow:
        user = uow.session.scalars(
            select(User).where(User.email == email).with_for_update()).first()
        allowed = rate_limits.take_mail(uow.session, email=email, client=client,
                                        limits=limits)
        recent = uow.session.scalar(select(exists().where(
            PasswordReset.user_id == (user.id if user else None),
            PasswordReset.used.is_(False),
            # The statement's time, not the transaction's: a request that waited for the
            # user's lock must see the link the one before it made as made before it.
            PasswordReset.created_at > func.statement_timestamp() - limits.mail_cooldown)))
        if user is None or not allowed or recent:
            uow.commit()  # the counters
            return
        secret = new_secret()
        uow.session.execute(insert(PasswordReset).values(
            user_id=user.id, token=secret_hash(secret), expires_at=func.now() + RESET_TTL))
        mail.queue_mail(uow.session, to=user.email, subject="Reset your Growth Diary password",
                        body=(
            "Someone (hopefully you) asked to reset the password of your Growth Diary account.\n"
            "To choose a new password, open this link within one hour:\n\n"
            f"{public_base_url}/reset-password?token={secret}\n\n"
            "The link works once. If you did not ask for it, ignore this mail: your password\n"
            "stays as it is.\n"))
        uow.commit()


def confirm_password_reset(uow: UnitOfWork, *, token: str, password: str
                           ) -> users.Revocation:
    """Set the new password and end every session, access token and outstanding link of
    the user."""
    passwords.check_policy(password)  # refuse a bad password before spending the link
    with uow:
        user_id = uow.session.scalar(
            update(PasswordReset)
            .where(PasswordReset.token == secret_hash(token), PasswordReset.used.is_(False),
                   PasswordReset.expires_at > func.now())
            .values(used=True)
            .returning(PasswordReset.user_id))
        if user_id is None:
            raise InvalidLink()
        user = _locked_user(uow.session, user_id)
        if user is None:
            raise InvalidLink()
        # Raising here rolls the redemption back too: the link stays good for a second try.
        passwords.check_policy(password, email=user.email)
        user.password = passwords.hash_password(password)
        _mark_verified(user)
        uow.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
        revocation = users.revoke_access(uow, user.id)
        _revoke_links(uow.session, user, verification=True)
        uow.commit()
    log.info("password reset", extra={"user_id": user.id})
    return revocation


def change_password(uow: UnitOfWork, *, user_id: str, session_id: str | None,
                    current_password: str, new_password: str, client: str,
                    limits: throttle.Limits) -> users.Revocation:
    """End every other session (the caller's, `session_id`, stays), every access token
    issued until now (the caller's too: it refreshes with the session it keeps) and any
    reset link.

    Guessing the current password with a stolen access token counts against the same
    limits as guessing it at login, and like login's the attempt is committed before the
    password is checked: the login throttle's exception to the transaction rule."""
    with uow:
        user = _locked_user(uow.session, user_id)
        if user is None:
            raise NotFound("No such user")
        passwords.check_policy(new_password, email=user.email, field="newPassword")
        throttle.take_attempt(uow.session, email=user.email, client=client, limits=limits)
        uow.commit()  # the documented exception: counted even if this goes no further
        user = _locked_user(uow.session, user_id)
        if user is None:
            raise NotFound("No such user")
        if not passwords.verify_password(user.password, current_password):
            raise Invalid({"currentPassword": ["Does not match your current password."]})
        throttle.give_back(uow.session, email=user.email, client=client)
        user.password = passwords.hash_password(new_password)
        others = delete(UserSession).where(UserSession.user_id == user.id)
        if session_id:
            others = others.where(UserSession.id != session_id)
        uow.session.execute(others)
        revocation = users.revoke_access(uow, user.id)
        _revoke_links(uow.session, user, verification=False)
        uow.commit()
    log.info("password changed", extra={"user_id": user.id})
    return revocation


def _mark_verified(user: User) -> None:
    if not user.verified or user.email_verified is None:
        user.verified = True
        user.email_verified = utcnow()


def _revoke_links(session: Session, user: User, *, verification: bool) -> None:
    """Outstanding reset links, and with `verification` also email links (ours and any
    Auth.js sign-in link for the address): after a reset none of them may still open it."""
    session.execute(update(PasswordReset)
                    .where(PasswordReset.user_id == user.id, PasswordReset.used.is_(False))
                    .values(used=True))
    if verification:
        session.execute(delete(VerificationToken).where(or_(
            VerificationToken.identifier.startswith(f"{VERIFY_PREFIX}{user.id}:",
                                                    autoescape=True),
            VerificationToken.identifier == user.email)))
