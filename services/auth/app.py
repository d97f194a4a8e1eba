"""The auth web process: `gunicorn "services.auth.app:create_app()"`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.auth.accounts.api import blp
from services.auth.authjs.api import adapter_blp
from services.auth.recovery.api import recovery_blp
from services.auth.settings import AuthSettings
from services.auth.tokens import TokenIssuer
from shared.http import Document, create_service_app

# The gateway does not route /auth/adapter/: the Next.js server calls auth directly, and
# reads the adapter's own document at /auth/adapter/openapi.json.
ADAPTER_DOCUMENT = Document(
    name="ADAPTER",
    title="Auth: the Auth.js adapter",
    description="The Auth.js (NextAuth) database adapter over HTTP, for the Next.js server "
                "only (not routed by the gateway). Every route needs the service credential: "
                "`Authorization: Bearer <AUTH_ADAPTER_SECRET>`. Docs: docs/authjs-adapter.md.",
    prefix="/auth/adapter",
    blueprints=[adapter_blp],
    security_schemes={"serviceCredential": {
        "type": "http", "scheme": "bearer",
        "description": "The AUTH_ADAPTER_SECRET shared with the Next.js server."}},
    security=[{"serviceCredential": []}],
)


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
        ],
        documents=(ADAPTER_DOCUMENT,),
        config=config,
        **wiring,
    )
    app.extensions["auth.settings"] = settings
    app.extensions["auth.tokens"] = tokens
    return app
