"""Access-token verification, done by every service itself with auth's public keys.

Only EdDSA is accepted, and the key must be one the JWKS publishes for EdDSA, so `alg: none`
and HS256 tokens forged with a public key as the secret are refused. Keys come either from a
source in this process (auth, whose key folder changes on rotation) or from auth's JWKS URL:
cached for JWKS_CACHE_S and refetched when an unknown `kid` appears, at most once every
JWKS_REFETCH_COOLDOWN_S, which is how a rotated key is picked up without a restart and how
forged `kid`s are kept from turning every request into a fetch from auth.

A client sends the same token with every request for its whole life, so a verified token's
claims are remembered (a bounded map): a repeat costs a lookup, an expiry check and a check
that its key is still published, instead of an Ed25519 verification. A retired key's tokens
are refused at once, cached or not.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHMS = ["EdDSA"]
JWKS_CACHE_S = 300  # also the max-age auth's JWKS route advertises
JWKS_REFETCH_COOLDOWN_S = 1.0
LEEWAY_S = 5
VERIFIED_CACHE_SIZE = 4096

Jwks = dict[str, Any]


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Claims:
    user_id: str
    session_id: str | None
    raw: dict[str, Any]


class TokenVerifier:
    """Checks signature, `exp`, `iat`, `iss`, `aud` and `sub` of an access token.

    `jwks` is a JWKS document or a callable returning the current one (auth's own keys,
    reloaded on rotation); else `jwks_url` is fetched.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        jwks: Jwks | Callable[[], Jwks] | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._source: Callable[[], Jwks] | None = None
        if callable(jwks):
            self._source = jwks
        elif jwks is not None:
            static = jwks
            self._source = lambda: static
        self._parsed: tuple[Jwks, jwt.PyJWKSet] | None = None
        self._verified: dict[str, tuple[Claims, str]] = {}  # token -> (claims, kid)
        self._client = (
            jwt.PyJWKClient(jwks_url, cache_keys=False, lifespan=JWKS_CACHE_S, timeout=5,
                            cooldown_duration=JWKS_REFETCH_COOLDOWN_S)
            if jwks_url and self._source is None
            else None
        )

    def _local_keys(self, source: Callable[[], Jwks]) -> jwt.PyJWKSet:
        """Parse the source's document once per version (it returns the same dict until the
        keys change)."""
        document = source()
        parsed = self._parsed
        if parsed is None or parsed[0] is not document:
            parsed = (document, jwt.PyJWKSet.from_dict(document))
            self._parsed = parsed
        return parsed[1]

    def _key(self, token: str) -> jwt.PyJWK:
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidToken("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token has no key id")
        if self._source is not None:
            key = next((k for k in self._local_keys(self._source).keys if k.key_id == kid), None)
            if key is None:
                raise InvalidToken("unknown key")
        elif self._client is not None:
            key = self._client.get_signing_key(kid)
        else:
            raise InvalidToken("no keys configured")
        if key.algorithm_name != alg:  # an EdDSA key verifies EdDSA tokens, nothing else
            raise InvalidToken("key and algorithm do not match")
        return key

    def _still_published(self, kid: str) -> bool:
        try:
            if self._source is not None:
                return any(k.key_id == kid for k in self._local_keys(self._source).keys)
            if self._client is not None:
                self._client.get_signing_key(kid)  # from its cache while the kid is known
                return True
        except (jwt.PyJWTError, ValueError):
            return False
        return False

    def verify(self, token: str) -> Claims:
        cached = self._verified.get(token)
        if cached is not None:
            claims, kid = cached
            if time.time() < claims.raw["exp"] + LEEWAY_S and self._still_published(kid):
                return claims
            self._verified.pop(token, None)
        claims, kid = self._verify_signature(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            with contextlib.suppress(StopIteration, RuntimeError):
                self._verified.pop(next(iter(self._verified)), None)  # the oldest
        self._verified[token] = (claims, kid)
        return claims

    def _verify_signature(self, token: str) -> tuple[Claims, str]:
        try:
            key = self._key(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=LEEWAY_S,
            )
        except InvalidToken:
            raise
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken(str(exc)) from exc
        return (Claims(user_id=str(claims["sub"]), session_id=claims.get("sid"), raw=claims),
                str(key.key_id))
