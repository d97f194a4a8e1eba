"""What auth hands out: short-lived access tokens and long-lived opaque secrets.

Access tokens are EdDSA JWTs signed with the newest key of AUTH_KEYS_DIR, so every service
verifies them with the public JWKS alone. Session (and, later, verification and reset)
tokens are random secrets of which only the SHA-256 is stored: 256 random bits need no slow
hash to resist guessing, and a deterministic hash is what lets us look them up.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from shared import keys
from shared.config import Settings, env_int
from shared.tokens import TokenVerifier

TOKEN_TYPE = "Bearer"


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int  # seconds


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class NoSigningKey(RuntimeError):
    pass


class TokenIssuer:
    """Signs access tokens and publishes the keys that verify them."""

    def __init__(
        self,
        signing_keys: Sequence[keys.SigningKey],
        *,
        issuer: str,
        audience: str,
        access_ttl_s: int = 15 * 60,
        session_ttl_s: int = 30 * 24 * 3600,
    ) -> None:
        if not signing_keys:
            raise NoSigningKey("auth needs a signing key: run `python -m shared.keys generate`")
        self.keys = list(signing_keys)  # oldest first: the last one signs
        self.issuer = issuer
        self.audience = audience
        self.access_ttl_s = access_ttl_s
        self.session_ttl = timedelta(seconds=session_ttl_s)

    @classmethod
    def from_env(cls, settings: Settings) -> TokenIssuer:
        directory = keys.keys_dir()
        signing_keys = keys.load(directory) if directory.is_dir() else []
        if not signing_keys:
            raise NoSigningKey(f"no signing key in {directory}: run "
                               "`python -m shared.keys generate` (AUTH_KEYS_DIR sets the folder)")
        return cls(
            signing_keys,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            access_ttl_s=env_int("ACCESS_TOKEN_TTL_SECONDS", 15 * 60),
            session_ttl_s=env_int("SESSION_TTL_SECONDS", 30 * 24 * 3600),
        )

    def access_token(self, *, user_id: str, session_id: str | None) -> AccessToken:
        key = self.keys[-1]
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": user_id,
            "iat": now, "exp": now + self.access_ttl_s, "jti": secrets.token_urlsafe(16),
        }
        if session_id:
            claims["sid"] = session_id
        token = jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
        return AccessToken(token, self.access_ttl_s)

    def session_expiry(self, now: datetime) -> datetime:
        return now + self.session_ttl

    def jwks(self) -> dict[str, Any]:
        """Public keys only: every key that may still have signed a live token."""
        return {"keys": [key.public_jwk() for key in self.keys]}

    def verifier(self) -> TokenVerifier:
        """Auth checks its own tokens with its own keys, never over HTTP to itself."""
        return TokenVerifier(issuer=self.issuer, audience=self.audience, jwks=self.jwks())
