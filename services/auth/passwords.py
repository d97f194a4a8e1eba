"""Password hashing (argon2id) and the password policy.

Parameters: argon2id, t=3 passes, m=64 MiB, p=1. That is well above OWASP's floor for
argon2id (m=19 MiB, t=2, p=1) and matches RFC 9106's second recommended option in memory and
passes (t=3, m=64 MiB); p=1 rather than its p=4 because a web process already hashes for
several requests at once on few cores, where extra lanes add latency, not attacker cost.
About 0.15 s a hash here. Stored hashes carry their parameters, so raising these later
upgrades each user at their next login (`needs_rehash`).

Policy (NIST SP 800-63B / ASVS 2.1): 8 to 128 characters, anything allowed, no silent
truncation, not on the common-passwords list. Passwords are NFKC-normalised before hashing
so the same password typed on different keyboards hashes the same.
"""

from __future__ import annotations

import functools
import secrets
import unicodedata
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from shared.config import env_int
from shared.errors import Invalid

MIN_LENGTH = 8
MAX_LENGTH = 128
# Django's common-passwords list (Royce Williams' 20,000 most common passwords, shipped with
# django.contrib.auth, BSD licence), keeping the entries long enough to pass MIN_LENGTH.
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")

# AUTH_ARGON2_MEMORY_KIB / AUTH_ARGON2_TIME_COST tune the cost to a machine (read once, at
# import), never below the ASVS floor: lower values are raised to it.
ASVS_MEMORY_KIB, ASVS_TIME_COST = 19 * 1024, 2
MEMORY_KIB = max(ASVS_MEMORY_KIB, env_int("AUTH_ARGON2_MEMORY_KIB", 64 * 1024))
TIME_COST = max(ASVS_TIME_COST, env_int("AUTH_ARGON2_TIME_COST", 3))
_HASHER = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=1, hash_len=32,
                         salt_len=16, type=Type.ID)
# Verified against when there is no stored hash, so an unknown email costs as much time as
# a wrong password and response times do not tell which emails have accounts.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def _normalized(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


@functools.cache
def _common() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


def check_policy(password: str, *, email: str | None = None, field: str = "password") -> None:
    """Raise Invalid (field errors) unless the password is acceptable."""
    problems = []
    length = len(_normalized(password))
    if length < MIN_LENGTH:
        problems.append(f"Must be at least {MIN_LENGTH} characters.")
    elif length > MAX_LENGTH:
        problems.append(f"Must be at most {MAX_LENGTH} characters.")
    elif _normalized(password).lower() in _common():
        problems.append("Too common: it is on a list of passwords attackers try first.")
    elif email and _normalized(password).strip().lower() == email.strip().lower():
        problems.append("Must not be your email address.")
    if problems:
        raise Invalid({field: problems})


def hash_password(password: str) -> str:
    return _HASHER.hash(_normalized(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if it matches; with no stored hash, still spends the time of one verification."""
    try:
        matched = _HASHER.verify(stored_hash or _DUMMY_HASH, _normalized(password))
    except (VerificationError, InvalidHashError):
        return False
    return matched and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker (older) parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
