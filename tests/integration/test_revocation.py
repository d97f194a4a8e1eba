"""Log out everywhere, a password change and a password reset revoke the user's access
tokens in every service: auth at once, goals, diary and stories within a second of
`auth.user.sessions_revoked` being applied, answered from memory; a token issued after the
revocation, even in the same second, keeps working everywhere."""

from __future__ import annotations

import importlib
import math
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from services.auth.models import PasswordReset
from services.auth.recovery import usecases as recovery
from services.auth.tokens import secret_hash
from shared.config import Settings
from shared.db import Database, UnitOfWork
from shared.events import parse_event
from shared.revocations import SESSIONS_REVOKED, record_revocation
from shared.tombstones import Tombstones
from tests.auth.support import PASSWORD, bearer, outbox_events, unique_email
from tests.helpers import apply_events, event, make_consumer, new_user_id, wait_for

# A read route of each service that consumes auth.user.sessions_revoked.
ROUTES = {"goals": "/goals", "diary": "/diary/posts/none", "stories": "/stories"}
NEW_PASSWORD = "another long and uncommon passphrase"


def tombstones_of(app_client: Any) -> Tombstones:
    return app_client.application.extensions["service"].tombstones  # type: ignore[no-any-return]


def register(auth: Any) -> dict[str, Any]:
    response = auth.post("/auth/register", json={"email": unique_email(), "password": PASSWORD})
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def log_in(auth: Any, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = auth.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def works(api: Any, route: str, token: str) -> bool:
    status = api.get(route, headers=bearer(token)).status_code
    assert status in (200, 401, 404), status
    return bool(status != 401)


def revocation_events(db: Database, user_id: str) -> list[Any]:
    return [parse_event(e) for e in outbox_events(db, SESSIONS_REVOKED, user_id)]


def test_logging_out_everywhere_refuses_old_tokens_in_every_service_and_keeps_new_ones(
        client: Callable[[str], Any], dbs: Callable[[str], Database],
        settings: Callable[[str], Settings]) -> None:
    auth = client("auth")
    user = register(auth)
    old = log_in(auth, user["email"])["accessToken"]
    apis = {service: client(service) for service in ROUTES}
    for service, api in apis.items():
        assert works(api, ROUTES[service], old)
        listener = tombstones_of(api)
        wait_for(lambda: listener.live, timeout=5,  # noqa: B023 - waited for at once
                 message=f"{service}'s listener is live")

    assert auth.post("/auth/logout-all", headers=bearer(old)).status_code == 204
    assert not works(auth, "/auth/me", old)  # auth: at once
    new = log_in(auth, user["email"])["accessToken"]  # most likely in the same second
    assert works(auth, "/auth/me", new)

    (revoked,) = revocation_events(dbs("auth"), user["id"])
    assert revoked.data.user_id == user["id"]
    for service, api in apis.items():
        handlers = importlib.import_module(f"services.{service}.handlers").HANDLERS
        apply_events(make_consumer(settings(service), dbs(service), handlers), revoked)
        applied = time.monotonic()
        route = ROUTES[service]
        wait_for(lambda: not works(api, route, old),  # noqa: B023 - waited for at once
                 timeout=1.0, interval=0.005, message=f"the old token refused by {service}")
        assert time.monotonic() - applied < 1.0
        assert user["id"] in tombstones_of(api)._revoked  # from memory, not the table
        assert works(api, ROUTES[service], new)


def test_a_token_is_refused_exactly_when_issued_before_the_cutoff(
        dbs: Callable[[str], Database]) -> None:
    db = dbs("goals")
    user_id = new_user_id()
    cutoff = datetime.now(UTC).replace(microsecond=123456)
    at = cutoff.timestamp()
    with UnitOfWork(db, source="/tests") as uow:
        record_revocation(uow, user_id=user_id, revoked_at=cutoff)
        uow.commit()
    live = Tombstones(db, horizon_s=3600)
    live.start()
    wait_for(lambda: live.live, timeout=5, message="listener live")
    wait_for(lambda: user_id in live._revoked, timeout=2, message="loaded")
    table = Tombstones(db, horizon_s=3600)
    table.start()
    table.stop()
    table._live = False  # every answer from the table
    for tombstones in (live, table):
        assert tombstones.refuses(user_id, issued_at=at - 0.000001)
        assert not tombstones.refuses(user_id, issued_at=at)
        assert not tombstones.refuses(user_id, issued_at=at + 0.000001)
        # A whole-second iat of the cutoff's second may be from just after it: refused,
        # the safe way; the next second's is not.
        assert tombstones.refuses(user_id, issued_at=float(math.floor(at)))
        assert not tombstones.refuses(user_id, issued_at=float(math.floor(at) + 1))
        assert not tombstones.refuses(new_user_id(), issued_at=at - 1)
    live.stop()


def test_the_latest_cutoff_stands_whatever_order_the_events_come_in(
        dbs: Callable[[str], Database], settings: Callable[[str], Settings]) -> None:
    db, user_id = dbs("diary"), new_user_id()
    handlers = importlib.import_module("services.diary.handlers").HANDLERS
    consumer = make_consumer(settings("diary"), db, handlers)
    later = datetime.now(UTC)
    apply_events(consumer, event(SESSIONS_REVOKED, user_id=user_id, revoked_at=later))
    apply_events(consumer, event(SESSIONS_REVOKED, user_id=user_id,
                                 revoked_at=later - timedelta(minutes=1)))
    with db.read_sessions() as session:
        assert session.scalar(select(db.revocations.c.revoked_at).where(
            db.revocations.c.user_id == user_id)) == later


def test_a_token_older_than_the_horizon_is_checked_against_the_table(
        dbs: Callable[[str], Database]) -> None:
    db, user_id = dbs("stories"), new_user_id()
    tombstones = Tombstones(db, horizon_s=300)
    tombstones.start()
    wait_for(lambda: tombstones.live, timeout=5, message="listener live")
    with UnitOfWork(db, source="/tests") as uow:
        record_revocation(uow, user_id=user_id, revoked_at=datetime.now(UTC))
        uow.commit()
    wait_for(lambda: user_id in tombstones._revoked, timeout=2, message="notified")
    tombstones._revoked.pop(user_id)  # as if it had aged out of memory
    assert tombstones.refuses(user_id, issued_at=time.time() - 3600)
    assert not tombstones.refuses(user_id, issued_at=time.time() + 1)  # memory: nothing
    tombstones.stop()


def test_changing_my_password_revokes_my_access_tokens_everywhere(
        client: Callable[[str], Any], dbs: Callable[[str], Database]) -> None:
    auth = client("auth")
    user = register(auth)
    here = log_in(auth, user["email"])
    response = auth.post("/auth/me/password", headers=bearer(here["accessToken"]), json={
        "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD})
    assert response.status_code == 204
    assert not works(auth, "/auth/me", here["accessToken"])
    # The session this change was made from stays: it refreshes into a token that works.
    refreshed = auth.post("/auth/refresh", json={"sessionToken": here["sessionToken"]})
    assert refreshed.status_code == 200
    assert works(auth, "/auth/me", refreshed.get_json()["accessToken"])
    (revoked,) = revocation_events(dbs("auth"), user["id"])
    assert revoked.data.user_id == user["id"]


def test_a_password_reset_revokes_the_access_tokens_everywhere(
        client: Callable[[str], Any], dbs: Callable[[str], Database]) -> None:
    auth, db = client("auth"), dbs("auth")
    user = register(auth)
    token = log_in(auth, user["email"])["accessToken"]
    secret = f"test-secret-{os.urandom(16).hex()}"
    with db.sessions() as session:
        session.execute(insert(PasswordReset).values(
            user_id=user["id"], token=secret_hash(secret),
            created_at=func.now(), expires_at=func.now() + recovery.RESET_TTL))
        session.commit()
    response = auth.post("/auth/password-reset/confirm",
                         json={"token": secret, "password": NEW_PASSWORD})
    assert response.status_code == 204, response.get_json()
    assert not works(auth, "/auth/me", token)
    assert works(auth, "/auth/me", log_in(auth, user["email"], NEW_PASSWORD)["accessToken"])
    (revoked,) = revocation_events(db, user["id"])
    assert revoked.data.user_id == user["id"]


@pytest.mark.parametrize("service", ["auth", *sorted(ROUTES)])
def test_every_service_has_a_revoked_token_table(
        service: str, dbs: Callable[[str], Database]) -> None:
    db = dbs(service)
    with db.read_sessions() as session:
        session.execute(select(func.count()).select_from(db.revocations)).one()
