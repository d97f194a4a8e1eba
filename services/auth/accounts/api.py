"""Accounts routes: translate HTTP to a use case and back (each view hands the use case an
unopened unit of work and the settings it needs)."""

from __future__ import annotations

from typing import Any, cast

from flask import current_app, request
from flask.views import MethodView

from services.auth import throttle
from services.auth.accounts import usecases
from services.auth.accounts.schemas import (
    AccessTokenSchema,
    JwksSchema,
    LoginResultSchema,
    LoginSchema,
    LogoutSchema,
    ProfileSchema,
    ProfileUpdateSchema,
    PublicProfileSchema,
    RegisterSchema,
    SessionTokenSchema,
)
from services.auth.models import User
from services.auth.settings import current_settings
from services.auth.tokens import AccessToken, TokenIssuer
from shared.errors import Unauthorized
from shared.http import (
    Blueprint,
    authenticated,
    current_user_id,
    revoked_here,
    service,
    unit_of_work,
)
from shared.tokens import Claims, InvalidToken

blp = Blueprint("auth", __name__, url_prefix="/auth",
                description="Accounts, sessions and access tokens; users' career profiles")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
JWKS_MAX_AGE_S = 300  # what shared.tokens' JWKS client caches for, too


def tokens() -> TokenIssuer:
    return cast(TokenIssuer, current_app.extensions["auth.tokens"])


def _bearer_claims() -> Claims | None:
    """The bearer token's claims if one was sent (logout accepts one, not requires it)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return service().verifier.verify(token.strip())
    except InvalidToken as exc:
        raise Unauthorized("The access token is invalid or expired") from exc


@blp.route("/register", methods=["POST"])
@blp.arguments(RegisterSchema)
@blp.response(201, ProfileSchema)
@blp.alt_response(409, description="An account with this email already exists")
@blp.alt_response(429, description="Too many registrations from this client; see Retry-After")
def register(body: dict[str, Any]) -> User:
    """Create an account with an email and a password"""
    settings = current_settings()
    client = throttle.client_address(request.headers.get("X-Forwarded-For"),
                                     request.remote_addr)
    return usecases.register(unit_of_work(), public_base_url=settings.public_base_url,
                             client=client, limits=settings.abuse_limits, **body)


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, LoginResultSchema)
@blp.alt_response(401, description="The email or password is incorrect")
@blp.alt_response(429, description="Too many failed logins for this account or client; "
                                   "see Retry-After")
def login(body: dict[str, Any]) -> usecases.Login:
    """Log in: a short-lived access token and a session token to refresh it"""
    client = throttle.client_address(request.headers.get("X-Forwarded-For"),
                                     request.remote_addr)
    return usecases.login(unit_of_work(), tokens=tokens(), client=client,
                          limits=current_settings().login_limits, **body)


@blp.route("/refresh", methods=["POST"])
@blp.arguments(SessionTokenSchema)
@blp.response(200, AccessTokenSchema)
@blp.alt_response(401, description="The session is unknown or has expired")
def refresh(body: dict[str, Any]) -> AccessToken:
    """A new access token for a live session"""
    return usecases.refresh(unit_of_work(), tokens=tokens(), **body)


@blp.route("/logout", methods=["POST"])
@blp.arguments(LogoutSchema, required=False)
@blp.response(204)
@blp.doc(security=[{}, *SECURITY])
def logout(body: dict[str, Any]) -> None:
    """End a session, named by its session token or by the bearer access token"""
    claims = _bearer_claims()
    if not body.get("session_token") and claims is None:
        raise Unauthorized("Send the session token or a bearer access token")
    usecases.logout(unit_of_work(), session_token=body.get("session_token"),
                    user_id=claims.user_id if claims else None,
                    session_id=claims.session_id if claims else None)


@blp.route("/logout-all", methods=["POST"])
@blp.response(204)
@blp.doc(security=SECURITY)
@authenticated
def logout_all() -> None:
    """End every session of mine, on every device"""
    revocation = usecases.logout_all(unit_of_work(), user_id=current_user_id())
    revoked_here(revocation.user_id, revocation.revoked_at)


@blp.route("/me")
class Me(MethodView):
    decorators = [authenticated]

    @blp.response(200, ProfileSchema)
    @blp.doc(security=SECURITY)
    def get(self) -> Any:
        """My profile, private fields included"""
        return usecases.get_me(unit_of_work(), user_id=current_user_id())

    @blp.arguments(ProfileUpdateSchema)
    @blp.response(200, ProfileSchema)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any]) -> User:
        """Change my career profile (the score and counters are not mine to set)"""
        return usecases.update_me(unit_of_work(), user_id=current_user_id(), **body)

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self) -> None:
        """Delete my account and, through the auth.user.deleted event, all my data"""
        usecases.delete_me(unit_of_work(), user_id=current_user_id())


@blp.route("/users/<user_id>")
@blp.response(200, PublicProfileSchema)
def public_profile(user_id: str) -> Any:
    """A user's public profile"""
    return usecases.get_public_profile(unit_of_work(), user_id=user_id)


@blp.route("/.well-known/jwks.json")
@blp.response(200, JwksSchema)
def jwks() -> tuple[dict[str, Any], dict[str, str]]:
    """The public keys that verify access tokens (every service fetches these)"""
    return tokens().jwks(), {"Cache-Control": f"public, max-age={JWKS_MAX_AGE_S}"}
