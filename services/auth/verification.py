"""Email verification links: mailed at registration (accounts) and on request (recovery),
redeemed in recovery. A leaf both features import.

Our verification tokens share Auth.js's table; the prefix keeps the two kinds apart and
binds ours to a user and the address the link was sent to. Only the secret's SHA-256 is
stored; the mail is queued in the caller's transaction and sent by the worker.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, insert
from sqlalchemy.orm import Session

from services.auth import mail
from services.auth.models import User, VerificationToken
from services.auth.tokens import new_secret, secret_hash

VERIFICATION_TTL = timedelta(hours=24)
VERIFY_PREFIX = "verify-email:"


def identifier_of(user: User) -> str:
    return f"{VERIFY_PREFIX}{user.id}:{user.email}"


def queue_verification(session: Session, user: User, *, public_base_url: str) -> None:
    """A new verification link for `user`, mailed by the worker once the caller commits;
    the link opens the front end at `public_base_url`."""
    secret = new_secret()
    session.execute(delete(VerificationToken).where(
        VerificationToken.identifier == identifier_of(user),
        VerificationToken.expires <= func.now()))
    session.execute(insert(VerificationToken).values(
        identifier=identifier_of(user), token=secret_hash(secret),
        expires=func.now() + VERIFICATION_TTL))
    mail.queue_mail(session, to=user.email, subject="Confirm your email for Growth Diary", body=(
        f"Hello{' ' + user.name if user.name else ''},\n\n"
        f"please confirm your email address by opening this link within 24 hours:\n\n"
        f"{public_base_url}/verify-email?token={secret}\n\n"
        "If you did not create a Growth Diary account, you can ignore this mail.\n"))
