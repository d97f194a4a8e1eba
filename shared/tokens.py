"""Access-token verification, done by every service itself with auth's public keys.

Only asymmetric algorithms are accepted, so `alg: none` and HS256 tokens forged with a
public key as the secret are refused. Keys come from auth's JWKS (cached, refetched when an
unknown `kid` appears, which is how a rotated key is picked up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHMS = ["EdDSA", "RS256"]


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Claims:
    user_id: str
    session_id: str | None
    raw: dict[str, Any]


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        jwks: dict[str, Any] | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._static = jwt.PyJWKSet.from_dict(jwks) if jwks else None
        self._client = (
            jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)
            if jwks_url and not jwks
            else None
        )

    def _key(self, token: str) -> Any:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("algorithm not allowed")
        kid = header.get("kid")
        if self._static is not None:
            for key in self._static.keys:
                if key.key_id == kid:
                    return key.key
            raise InvalidToken("unknown key")
        if self._client is None:
            raise InvalidToken("no keys configured")
        if not isinstance(kid, str):
            raise InvalidToken("token has no key id")
        return self._client.get_signing_key(kid).key

    def verify(self, token: str) -> Claims:
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=5,
            )
        except InvalidToken:
            raise
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken(str(exc)) from exc
        return Claims(user_id=str(claims["sub"]), session_id=claims.get("sid"), raw=claims)
