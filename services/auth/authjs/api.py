"""The Auth.js adapter over HTTP: one route per adapter method, for a Next.js server only.

Every route needs the service credential (`Authorization: Bearer $AUTH_ADAPTER_SECRET`);
with no secret configured the adapter is off (503). JSON uses Auth.js's own field names.
Where Auth.js's method returns null, so does the route (200, body `null`).
A secret (session or verification token) never travels in a URL, because URLs are written
to the gateway's and gunicorn's access logs: those routes take it in a POST body.
Docs: docs/authjs-adapter.md.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Response, request

from services.auth.authjs import usecases
from services.auth.authjs.schemas import (
    AdapterAccountOrNullSchema,
    AdapterAccountSchema,
    AdapterSessionAndUserOrNullSchema,
    AdapterSessionOrNullSchema,
    AdapterSessionSchema,
    AdapterSessionTokenSchema,
    AdapterSessionUpdateSchema,
    AdapterUserOrNullSchema,
    AdapterUserSchema,
    AdapterUserUpdateSchema,
    AdapterVerificationTokenOrNullSchema,
    AdapterVerificationTokenSchema,
    AdapterVerificationTokenUseSchema,
)
from services.auth.models import Account, User
from services.auth.settings import current_settings
from shared.errors import DomainError, Unauthorized
from shared.http import Blueprint, unit_of_work

adapter_blp = Blueprint(
    "authjs_adapter", __name__, url_prefix="/auth/adapter",
    description="The Auth.js (NextAuth) database adapter, for the Next.js server only. "
                "Every route needs `Authorization: Bearer <AUTH_ADAPTER_SECRET>`.")


class AdapterDisabled(DomainError):
    status, title = 503, "Service Unavailable"


@adapter_blp.before_request
def require_service_credential() -> None:
    """Only the Next.js server holds the secret; compared in constant time."""
    secret = current_settings().adapter_secret
    if not secret:
        raise AdapterDisabled("adapter disabled: AUTH_ADAPTER_SECRET is not set on this server")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), secret.encode()):
        raise Unauthorized("The adapter's service credential is missing or wrong")


@adapter_blp.after_request
def never_cache(response: Response) -> Response:
    """Bodies carry sessions and OAuth tokens: no cache may keep them."""
    response.headers["Cache-Control"] = "no-store"
    return response


# -- users ---------------------------------------------------------------------------------


@adapter_blp.route("/users", methods=["POST"])
@adapter_blp.arguments(AdapterUserSchema)
@adapter_blp.response(201, AdapterUserSchema)
@adapter_blp.alt_response(409, description="A user with this email already exists")
def create_user(body: dict[str, Any]) -> User:
    """createUser: a password-less user; announced as auth.user.registered"""
    return usecases.create_user(unit_of_work(), **body)


@adapter_blp.route("/users/<user_id>", methods=["GET"])
@adapter_blp.response(200, AdapterUserOrNullSchema)
def get_user(user_id: str) -> User | None:
    """getUser: the user, or null"""
    return usecases.get_user(unit_of_work(), user_id=user_id)


@adapter_blp.route("/users/by-email/<path:email>", methods=["GET"])
@adapter_blp.response(200, AdapterUserOrNullSchema)
def get_user_by_email(email: str) -> User | None:
    """getUserByEmail: the user, or null (emails compare case-insensitively)"""
    return usecases.get_user_by_email(unit_of_work(), email=email)


@adapter_blp.route("/users/by-account/<provider>/<path:provider_account_id>", methods=["GET"])
@adapter_blp.response(200, AdapterUserOrNullSchema)
def get_user_by_account(provider: str, provider_account_id: str) -> User | None:
    """getUserByAccount: the user the provider account is linked to, or null"""
    return usecases.get_user_by_account(unit_of_work(), provider=provider,
                                        provider_account_id=provider_account_id)


@adapter_blp.route("/users/<user_id>", methods=["PATCH"])
@adapter_blp.arguments(AdapterUserUpdateSchema)
@adapter_blp.response(200, AdapterUserSchema)
@adapter_blp.alt_response(404, description="No such user")
def update_user(body: dict[str, Any], user_id: str) -> User:
    """updateUser: change name, email, emailVerified or image; announced as auth.user.updated"""
    return usecases.update_user(unit_of_work(), user_id=user_id, **body)


@adapter_blp.route("/users/<user_id>", methods=["DELETE"])
@adapter_blp.response(200, AdapterUserOrNullSchema)
def delete_user(user_id: str) -> User | None:
    """deleteUser: the user and their accounts and sessions go, as with DELETE /auth/me"""
    return usecases.delete_user(unit_of_work(), user_id=user_id)


# -- accounts ------------------------------------------------------------------------------


@adapter_blp.route("/accounts", methods=["POST"])
@adapter_blp.arguments(AdapterAccountSchema)
@adapter_blp.response(201, AdapterAccountSchema)
@adapter_blp.alt_response(409, description="This provider account is already linked")
def link_account(body: dict[str, Any]) -> Account:
    """linkAccount: link a provider account to the user named by userId"""
    return usecases.link_account(unit_of_work(), **body)


@adapter_blp.route("/accounts/<provider>/<path:provider_account_id>", methods=["GET"])
@adapter_blp.response(200, AdapterAccountOrNullSchema)
def get_account(provider: str, provider_account_id: str) -> Account | None:
    """getAccount: the provider account, or null"""
    return usecases.get_account(unit_of_work(), provider=provider,
                                provider_account_id=provider_account_id)


@adapter_blp.route("/accounts/<provider>/<path:provider_account_id>", methods=["DELETE"])
@adapter_blp.response(200, AdapterAccountOrNullSchema)
def unlink_account(provider: str, provider_account_id: str) -> Account | None:
    """unlinkAccount: the unlinked account, or null if it was not linked"""
    return usecases.unlink_account(unit_of_work(), provider=provider,
                                   provider_account_id=provider_account_id)


# -- sessions: the token is a secret, so it goes in the body -------------------------------


@adapter_blp.route("/sessions", methods=["POST"])
@adapter_blp.arguments(AdapterSessionSchema)
@adapter_blp.response(201, AdapterSessionSchema)
@adapter_blp.alt_response(409, description="A session with this token already exists")
def create_session(body: dict[str, Any]) -> usecases.AdapterSession:
    """createSession: store a session under the token Auth.js generated (hashed)"""
    return usecases.create_session(unit_of_work(), **body)


@adapter_blp.route("/sessions/lookup", methods=["POST"])
@adapter_blp.arguments(AdapterSessionTokenSchema)
@adapter_blp.response(200, AdapterSessionAndUserOrNullSchema)
def get_session_and_user(body: dict[str, Any]) -> usecases.SessionAndUser | None:
    """getSessionAndUser: the session and its user, or null (expired ones too)"""
    return usecases.get_session_and_user(unit_of_work(), **body)


@adapter_blp.route("/sessions/update", methods=["POST"])
@adapter_blp.arguments(AdapterSessionUpdateSchema)
@adapter_blp.response(200, AdapterSessionOrNullSchema)
def update_session(body: dict[str, Any]) -> usecases.AdapterSession | None:
    """updateSession: change expires (or userId), or null if there is no such session"""
    return usecases.update_session(unit_of_work(), **body)


@adapter_blp.route("/sessions/delete", methods=["POST"])
@adapter_blp.arguments(AdapterSessionTokenSchema)
@adapter_blp.response(200, AdapterSessionOrNullSchema)
def delete_session(body: dict[str, Any]) -> usecases.AdapterSession | None:
    """deleteSession: the deleted session, or null if there was none"""
    return usecases.delete_session(unit_of_work(), **body)


# -- verification tokens -------------------------------------------------------------------


@adapter_blp.route("/verification-tokens", methods=["POST"])
@adapter_blp.arguments(AdapterVerificationTokenSchema)
@adapter_blp.response(201, AdapterVerificationTokenSchema)
@adapter_blp.alt_response(409, description="This verification token already exists")
def create_verification_token(body: dict[str, Any]) -> usecases.IssuedToken:
    """createVerificationToken: store the token (hashed) for its identifier"""
    return usecases.create_verification_token(unit_of_work(), **body)


@adapter_blp.route("/verification-tokens/use", methods=["POST"])
@adapter_blp.arguments(AdapterVerificationTokenUseSchema)
@adapter_blp.response(200, AdapterVerificationTokenOrNullSchema)
def use_verification_token(body: dict[str, Any]) -> usecases.IssuedToken | None:
    """useVerificationToken: the token, deleted as it is returned; null on a second use"""
    return usecases.use_verification_token(unit_of_work(), **body)
