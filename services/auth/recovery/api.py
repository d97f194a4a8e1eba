"""Recovery routes: verify an email, reset a forgotten password, change a known one."""

from __future__ import annotations

from typing import Any

from flask import g, request

from services.auth import throttle
from services.auth.recovery import usecases
from services.auth.recovery.schemas import (
    AcceptedSchema,
    LinkTokenSchema,
    PasswordChangeSchema,
    ResetConfirmSchema,
    ResetRequestSchema,
)
from services.auth.settings import current_settings
from shared.http import Blueprint, authenticated, current_user_id, revoked_here, unit_of_work

recovery_blp = Blueprint("recovery", __name__, url_prefix="/auth",
                         description="Email verification and password recovery")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
# One answer whatever happened, so it tells nobody whether an account exists.
RESET_REQUESTED = {"message": "If an account exists for this email, a link to reset its "
                              "password is on its way."}
VERIFICATION_RESENT = {"message": "If your email is not yet verified, a new link is on its way."}


def _client() -> str:
    return throttle.client_address(request.headers.get("X-Forwarded-For"), request.remote_addr)


@recovery_blp.route("/verify-email", methods=["POST"])
@recovery_blp.arguments(LinkTokenSchema)
@recovery_blp.response(204)
@recovery_blp.alt_response(400, description="The link is invalid, expired or already used")
def verify_email(body: dict[str, Any]) -> None:
    """Confirm my email address with the link from the verification mail"""
    usecases.verify_email(unit_of_work(), token=body["token"])


@recovery_blp.route("/verify-email/resend", methods=["POST"])
@authenticated
@recovery_blp.response(202, AcceptedSchema)
@recovery_blp.doc(security=SECURITY)
def resend_verification() -> dict[str, str]:
    """Mail me a new verification link (at most one a minute, and a few an hour)"""
    settings = current_settings()
    usecases.resend_verification(unit_of_work(), user_id=current_user_id(),
                                 public_base_url=settings.public_base_url, client=_client(),
                                 limits=settings.abuse_limits)
    return VERIFICATION_RESENT


@recovery_blp.route("/password-reset/request", methods=["POST"])
@recovery_blp.arguments(ResetRequestSchema)
@recovery_blp.response(202, AcceptedSchema)
def request_password_reset(body: dict[str, Any]) -> dict[str, str]:
    """Mail a password reset link, valid one hour, if the account exists (a few an hour at
    most; past that the answer is the same and no mail goes out)"""
    settings = current_settings()
    usecases.request_password_reset(unit_of_work(), email=body["email"],
                                    public_base_url=settings.public_base_url, client=_client(),
                                    limits=settings.abuse_limits)
    return RESET_REQUESTED


@recovery_blp.route("/password-reset/confirm", methods=["POST"])
@recovery_blp.arguments(ResetConfirmSchema)
@recovery_blp.response(204)
@recovery_blp.alt_response(400, description="The link is invalid, expired or already used")
def confirm_password_reset(body: dict[str, Any]) -> None:
    """Set a new password with the reset link; ends every session of the account"""
    revocation = usecases.confirm_password_reset(unit_of_work(), token=body["token"],
                                                 password=body["password"])
    revoked_here(revocation.user_id, revocation.revoked_at)


@recovery_blp.route("/me/password", methods=["POST"])
@authenticated
@recovery_blp.arguments(PasswordChangeSchema)
@recovery_blp.response(204)
@recovery_blp.doc(security=SECURITY)
def change_password(body: dict[str, Any]) -> None:
    """Change my password; ends my other sessions (this one stays)"""
    revocation = usecases.change_password(unit_of_work(), user_id=current_user_id(),
                                          session_id=g.claims.session_id, client=_client(),
                                          limits=current_settings().login_limits, **body)
    revoked_here(revocation.user_id, revocation.revoked_at)
