"""A verified token is remembered, but never past its expiry or its key's retirement."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from shared import keys
from shared.tokens import LEEWAY_S, InvalidToken, TokenVerifier
from tests.helpers import wait_for


def token(key: keys.SigningKey, *, ttl: float = 300) -> str:
    now = time.time()
    return jwt.encode({"sub": "u1", "iss": "iss", "aud": "aud", "iat": int(now),
                       "exp": now + ttl}, key.private_key, algorithm="EdDSA",
                      headers={"kid": key.kid})


def test_a_cached_token_is_refused_once_its_key_is_retired(tmp_path: Path) -> None:
    key = keys.generate(tmp_path)
    published: dict[str, Any] = {"keys": [key.public_jwk()]}
    verifier = TokenVerifier(issuer="iss", audience="aud", jwks=lambda: published)
    signed = token(key)
    assert verifier.verify(signed).user_id == "u1"
    assert verifier.verify(signed).user_id == "u1"  # from the cache
    published = {"keys": []}  # a new document: the key is retired
    with pytest.raises(InvalidToken):
        verifier.verify(signed)


def test_a_cached_token_is_refused_once_it_expires(tmp_path: Path) -> None:
    key = keys.generate(tmp_path)
    verifier = TokenVerifier(issuer="iss", audience="aud", jwks={"keys": [key.public_jwk()]})
    signed = token(key, ttl=1.5 - LEEWAY_S)  # good for 1.5 s more, counting the leeway
    assert verifier.verify(signed).user_id == "u1"
    assert verifier.verify(signed).user_id == "u1"  # from the cache

    def refused() -> bool:
        try:
            verifier.verify(signed)
        except InvalidToken:
            return True
        return False

    wait_for(refused, timeout=5, interval=0.05, message="the remembered token to expire")
    assert time.time() >= jwt.decode(signed, options={"verify_signature": False})["exp"] \
        + LEEWAY_S - 0.01  # refused only once it really expired
