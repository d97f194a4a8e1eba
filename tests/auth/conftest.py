"""Fixtures for auth's tests: its test client, its database, a consumer with its handlers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from services.auth.handlers import HANDLERS
from services.auth.models import User
from services.auth.rate_limits import AbuseLimits
from services.auth.throttle import Limits
from shared.consumer import EventConsumer
from shared.db import Database
from tests.auth.support import PASSWORD, unique_email


@pytest.fixture
def api(client: Callable[[str], Any]) -> Any:
    return client("auth")


@pytest.fixture
def auth_apps(api: Any) -> list[Flask]:
    """The auth apps this test talks to: the session's, and any more it builds (append)."""
    return [api.application]


@pytest.fixture
def configure_auth(auth_apps: list[Flask], monkeypatch: pytest.MonkeyPatch
                   ) -> Callable[..., None]:
    """Change AuthSettings fields of this test's auth apps, as their environment would at
    start-up (settings are read once per process); restored after the test."""

    def configure(**changes: Any) -> None:
        for app in auth_apps:
            current = app.extensions["auth.settings"]
            monkeypatch.setitem(app.extensions, "auth.settings",
                                dataclasses.replace(current, **changes))

    return configure


@pytest.fixture
def login_limits(configure_auth: Callable[..., None]) -> Callable[..., None]:
    """Set the login limits (per_account, per_client, window_s; the rest stay default), as
    LOGIN_MAX_FAILURES_PER_ACCOUNT, _PER_CLIENT and LOGIN_WINDOW_SECONDS would."""

    def set_limits(**limits: int) -> None:
        configure_auth(login_limits=Limits(**limits))

    return set_limits


@pytest.fixture
def abuse_limits(configure_auth: Callable[..., None]) -> Callable[..., AbuseLimits]:
    """Set the abuse limits (mail_per_address, mail_per_client, register_per_client,
    window_s, mail_cooldown_s; the rest stay default), as MAIL_MAX_PER_ADDRESS, ... would;
    returns them."""

    def set_limits(**limits: int) -> AbuseLimits:
        chosen = AbuseLimits(**limits)
        configure_auth(abuse_limits=chosen)
        return chosen

    return set_limits


@pytest.fixture
def wide_db(settings: Callable[..., Any]) -> Iterator[Database]:
    """Enough connections that sixteen requests really run at once."""
    db = Database(settings("auth").database_url, "auth", pool_size=16)
    yield db
    db.dispose()


@pytest.fixture
def db(dbs: Callable[[str], Database]) -> Database:
    return dbs("auth")


@pytest.fixture
def register(api: Any) -> Callable[..., dict[str, Any]]:
    """Register through the API; returns the 201 body."""

    def make(email: str | None = None, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
        response = api.post("/auth/register",
                            json={"email": email or unique_email(), "password": password, **extra})
        assert response.status_code == 201, response.get_json()
        return dict(response.get_json())

    return make


@pytest.fixture
def login(api: Any, register: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Register a new user and log in; returns the login body."""

    def make(**extra: Any) -> dict[str, Any]:
        user = register(**extra)
        response = api.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())

    return make


@pytest.fixture
def new_user(db: Database) -> Callable[..., str]:
    """A user inserted directly (no password hashing): for tests of event effects."""

    def make(**fields: Any) -> str:
        with db.sessions() as session:
            user = User(email=unique_email("direct"), **fields)
            session.add(user)
            session.commit()
            return user.id

    return make


@pytest.fixture
def consumer(settings: Callable[..., Any], db: Database) -> EventConsumer:
    return EventConsumer(settings("auth"), db, HANDLERS)
