"""What auth hands out: short-lived access tokens and long-lived opaque secrets.

Access tokens are EdDSA JWTs signed with the newest key of AUTH_KEYS_DIR, so every service
verifies them with the public JWKS alone. The folder is rechecked every few seconds
(AUTH_KEYS_CHECK_SECONDS), so a key added or retired there is used or dropped by every
running process without a restart. Session (and verification and reset) tokens are random
secrets of which only the SHA-256 is stored: 256 random bits need no slow hash to resist
guessing, and a deterministic hash is what lets us look them up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from services.auth.settings import AuthSettings
from shared import keys
from shared.tokens import Jwks, TokenVerifier

log = logging.getLogger(__name__)
TOKEN_TYPE = "Bearer"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int  # seconds


def now_us() -> int:
    """Auth's clock, in whole microseconds since the epoch: what a token's `iat` and a
    revocation's cutoff are both read from, so the two compare exactly."""
    return time.time_ns() // 1000


def instant(microseconds: int) -> datetime:
    """`now_us()` as an aware datetime, exactly (no float on the way)."""
    return EPOCH + timedelta(microseconds=microseconds)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class NoSigningKey(RuntimeError):
    pass


KeySource = Callable[[], Sequence[keys.SigningKey]]


class KeyDirectory:
    """The signing keys of a folder, oldest first, reread when its .pem files change.

    Checked at most every `check_every_s`, so rotation costs a few stat calls, not a
    restart. A half-written or emptied folder keeps the keys already loaded: a rotation in
    progress or a slip of `rm` must not stop logins.
    """

    def __init__(self, directory: Path, *, check_every_s: float = 2.0) -> None:
        self.directory = directory
        self.check_every_s = check_every_s
        self._lock = threading.Lock()
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()
        self._keys: tuple[keys.SigningKey, ...] = ()
        self._next_check = 0.0
        self._reload()
        if not self._keys:
            raise NoSigningKey(f"no signing key in {directory}: run "
                               "`python -m shared.keys generate` (AUTH_KEYS_DIR sets the folder)")

    def __call__(self) -> tuple[keys.SigningKey, ...]:
        if time.monotonic() >= self._next_check:
            with self._lock:
                if time.monotonic() >= self._next_check:
                    self._reload()
        return self._keys

    def _files(self) -> tuple[tuple[str, int, int], ...]:
        try:
            with os.scandir(self.directory) as entries:
                stats = [(e.name, e.stat()) for e in entries if e.name.endswith(".pem")]
        except FileNotFoundError:
            return ()
        return tuple(sorted((name, st.st_mtime_ns, st.st_size) for name, st in stats))

    def _reload(self) -> None:
        self._next_check = time.monotonic() + self.check_every_s
        fingerprint = self._files()
        if fingerprint == self._fingerprint:
            return
        # Remembered even when unusable: the next write to any key file changes it again.
        self._fingerprint = fingerprint
        try:
            loaded = tuple(keys.load(self.directory))
        except (OSError, ValueError, TypeError) as exc:  # e.g. a key file still being written
            log.warning("signing keys not reloaded, keeping the current ones",
                        extra={"error": type(exc).__name__})
            return
        if not loaded:
            if self._keys:
                log.error("no signing key left in the key folder, keeping the current ones")
            return
        self._keys = loaded
        log.info("signing keys loaded", extra={"kids": [key.kid for key in loaded]})


class TokenIssuer:
    """Signs access tokens and publishes the keys that verify them."""

    def __init__(
        self,
        signing_keys: KeySource,
        *,
        issuer: str,
        audience: str,
        access_ttl_s: int = 15 * 60,
        session_ttl_s: int = 30 * 24 * 3600,
    ) -> None:
        self._keys = signing_keys
        if not self._keys():
            raise NoSigningKey("auth needs a signing key: run `python -m shared.keys generate`")
        self.issuer = issuer
        self.audience = audience
        self.access_ttl_s = access_ttl_s
        self.session_ttl = timedelta(seconds=session_ttl_s)
        self._published: tuple[Sequence[keys.SigningKey], Jwks] | None = None

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> TokenIssuer:
        """Signing with the keys of the settings' folder, rechecked as they say."""
        return cls(
            KeyDirectory(settings.keys_dir, check_every_s=settings.keys_check_s),
            issuer=settings.base.token_issuer,
            audience=settings.base.token_audience,
            access_ttl_s=settings.access_ttl_s,
            session_ttl_s=settings.session_ttl_s,
        )

    @property
    def signing_keys(self) -> Sequence[keys.SigningKey]:
        """Every key that may still have signed a live token, oldest first."""
        return self._keys()

    def access_token(self, *, user_id: str, session_id: str | None) -> AccessToken:
        key = self.signing_keys[-1]  # the newest signs
        issued = now_us()
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": user_id,
            # To the microsecond (a JSON number with six decimals, which a NumericDate may
            # be): a revocation refuses exactly the tokens issued before it (see
            # shared.tombstones).
            "iat": issued / 1_000_000, "exp": issued // 1_000_000 + self.access_ttl_s,
            "jti": secrets.token_urlsafe(16),
        }
        if session_id:
            claims["sid"] = session_id
        token = jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
        return AccessToken(token, self.access_ttl_s)

    def session_expiry(self, now: datetime) -> datetime:
        return now + self.session_ttl

    def jwks(self) -> Jwks:
        """Public keys only; the same document until the keys change (verifiers cache it)."""
        current = self.signing_keys
        published = self._published
        if published is None or published[0] is not current:
            published = (current, {"keys": [key.public_jwk() for key in current]})
            self._published = published
        return published[1]

    def verifier(self) -> TokenVerifier:
        """Auth checks its own tokens with its own current keys, never over HTTP to itself."""
        return TokenVerifier(issuer=self.issuer, audience=self.audience, jwks=self.jwks)
