"""The auth web process: `gunicorn "services.auth.app:create_app()"`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.auth.accounts.api import blp
from services.auth.authjs.api import adapter_blp
from services.auth.recovery.api import recovery_blp
from services.auth.settings import AuthSettings
from services.auth.tokens import TokenIssuer
from shared.http import create_service_app


def create_app(
    config: dict[str, Any] | None = None,
    *,
    tokens: TokenIssuer | None = None,
    settings: AuthSettings | None = None,
    **wiring: Any,
) -> Flask:
    """Settings are read here, once (views find them in `app.extensions["auth.settings"]`)."""
    settings = settings or AuthSettings.from_env()
    tokens = tokens or TokenIssuer.from_settings(settings)
    # Auth verifies its own access tokens with its own keys: no HTTP round trip to itself.
    wiring.setdefault("verifier", tokens.verifier())
    app = create_service_app(
        settings.base,
        title="Auth",
        description="Accounts, sessions and EdDSA access tokens (public keys at "
                    "/auth/.well-known/jwks.json), and users' career profiles. Deleting an "
                    "account deletes the user's data everywhere (auth.user.deleted).",
        blueprints=[
            blp,
            recovery_blp,
            adapter_blp,
        ],
        config=config,
        **wiring,
    )
    app.extensions["auth.settings"] = settings
    app.extensions["auth.tokens"] = tokens
    return app
