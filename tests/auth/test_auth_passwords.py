"""Passwords: argon2id at today's parameters, upgraded at login, and the policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import update

from services.auth import passwords
from services.auth.models import User
from shared.db import Database
from shared.errors import Invalid
from tests.auth.support import PASSWORD, load_user

TODAY = "$argon2id$v=19$m=65536,t=3,p=1$"


def test_passwords_are_stored_as_argon2id_hashes(
        register: Callable[..., dict[str, Any]], db: Database) -> None:
    user = register()

    stored = load_user(db, user["id"])

    assert stored is not None and stored.password is not None
    assert stored.password.startswith(TODAY)
    assert PASSWORD not in stored.password


def test_login_upgrades_a_hash_made_with_weaker_parameters(
        api: Any, register: Callable[..., dict[str, Any]], db: Database) -> None:
    user = register()
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID)
    with db.sessions() as session:
        session.execute(update(User).where(User.id == user["id"])
                        .values(password=weak.hash(PASSWORD)))
        session.commit()

    response = api.post("/auth/login", json={"email": user["email"], "password": PASSWORD})

    assert response.status_code == 200
    stored = load_user(db, user["id"])
    assert stored is not None and stored.password is not None
    assert stored.password.startswith(TODAY)
    assert passwords.verify_password(stored.password, PASSWORD)


def test_a_hash_at_todays_parameters_needs_no_rehash() -> None:
    assert not passwords.needs_rehash(passwords.hash_password(PASSWORD))
    assert passwords.needs_rehash("not a hash")


def test_verifying_without_a_stored_hash_fails() -> None:
    assert passwords.verify_password(None, PASSWORD) is False
    assert passwords.verify_password("garbage", PASSWORD) is False


def test_passwords_are_normalised_before_hashing() -> None:
    composed, decomposed = "caf\u00e9 au lait!", "cafe\u0301 au lait!"

    assert passwords.verify_password(passwords.hash_password(composed), decomposed)


@pytest.mark.parametrize("password", ["ab3 kd8z", "Correct Horse 7", "x1" * 64, "\u00e9" * 8])
def test_the_policy_accepts(password: str) -> None:
    passwords.check_policy(password, email="someone@example.com")


@pytest.mark.parametrize(("password", "reason"), [
    ("a" * 7, "at least 8"),
    ("x" * 129, "at most 128"),
    ("password", "common"),
    ("PassWord1", "common"),
    ("qwertyuiop", "common"),
    ("someone@example.com", "email"),
])
def test_the_policy_refuses(password: str, reason: str) -> None:
    with pytest.raises(Invalid) as refused:
        passwords.check_policy(password, email="someone@example.com")

    [message] = refused.value.extra["errors"]["password"]  # type: ignore[index]
    assert reason in message


def test_the_common_password_list_is_sizeable() -> None:
    entries = passwords.COMMON_PASSWORDS.read_text().splitlines()

    assert len(entries) > 5000
    assert all(len(entry) >= passwords.MIN_LENGTH for entry in entries)
