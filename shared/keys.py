"""Auth's signing keys: Ed25519 PEM files in one folder, newest signs, all verify.

Rotation without downtime: add a key (`python -m shared.keys generate`), it is published in
the JWKS at once and signs from then on; delete the old file once tokens it signed expired.
"""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from shared.config import REPO_ROOT, env, load_env_file


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "alg": "EdDSA", "use": "sig"})
        return jwk


def keys_dir() -> Path:
    path = Path(env("AUTH_KEYS_DIR", "var/keys"))
    return path if path.is_absolute() else REPO_ROOT / path


def generate(directory: Path) -> SigningKey:
    directory.mkdir(parents=True, exist_ok=True)
    # Microseconds in the kid: keys made in the same second still sort by age.
    kid = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f") + "-" + secrets.token_hex(4)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = directory / f"{kid}.pem"
    partial = directory / f".{kid}.pem.tmp"  # not *.pem: loaders never see half a key
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    partial.rename(path)
    return SigningKey(kid, key)


def load(directory: Path) -> list[SigningKey]:
    """All keys, oldest first (kids start with their creation time)."""
    keys = []
    for path in sorted(directory.glob("*.pem")):
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, Ed25519PrivateKey):
            keys.append(SigningKey(path.stem, key))
    return keys


def main() -> None:
    load_env_file()
    parser = argparse.ArgumentParser(description="Manage auth's token signing keys")
    parser.add_argument("command", choices=["generate", "list"])
    parser.add_argument("--if-missing", action="store_true", help="generate only if none exist")
    args = parser.parse_args()
    directory = keys_dir()
    if args.command == "generate":
        if args.if_missing and directory.exists() and load(directory):
            print(f"keys present in {directory}")
            return
        print(f"generated {generate(directory).kid} in {directory}")
    else:
        for key in load(directory):
            print(key.kid)


if __name__ == "__main__":
    main()
