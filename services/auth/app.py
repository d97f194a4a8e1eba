"""The auth web process: `gunicorn "services.auth.app:create_app()"`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.auth.accounts.api import blp
from services.auth.authjs.api import adapter_blp
from services.auth.recovery.api import recovery_blp
from services.auth.tokens import TokenIssuer
from shared.config import Settings
from shared.http import create_service_app


def create_app(
    config: dict[str, Any] | None = None, *, tokens: TokenIssuer | None = None, **wiring: Any
) -> Flask:
    settings = Settings.from_env("auth")
    tokens = tokens or TokenIssuer.from_env(settings)
    # Auth verifies its own access tokens with its own keys: no HTTP round trip to itself.
    wiring.setdefault("verifier", tokens.verifier())
    app = create_service_app(
        settings,
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
    app.extensions["auth.tokens"] = tokens
    return app
