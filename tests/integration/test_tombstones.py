"""A deleted user's tokens are refused by every service within a second of the deletion
event being applied, without a database round trip on the request."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects.postgresql import insert

from shared.config import Settings
from shared.db import Database
from shared.tombstones import Tombstones
from tests.helpers import apply_events, event, make_consumer, new_user_id, wait_for

# A read route of each service that consumes auth.user.deleted.
ROUTES = {"goals": "/goals", "diary": "/diary/posts/none", "stories": "/stories"}


def tombstones_of(app_client: Any) -> Tombstones:
    return app_client.application.extensions["service"].tombstones  # type: ignore[no-any-return]


@pytest.mark.parametrize("service", sorted(ROUTES))
def test_a_deleted_users_token_is_refused_within_a_second_of_the_event(
        service: str, client: Callable[[str], Any], auth_header: Callable[[str], dict[str, str]],
        dbs: Callable[[str], Database], settings: Callable[[str], Settings]) -> None:
    api, user_id = client(service), new_user_id()
    headers = auth_header(user_id)
    assert api.get(ROUTES[service], headers=headers).status_code in (200, 404)
    tombstones = tombstones_of(api)
    wait_for(lambda: tombstones.live, timeout=5, message="the tombstone listener is live")

    handlers = importlib.import_module(f"services.{service}.handlers").HANDLERS
    consumer = make_consumer(settings(service), dbs(service), handlers)
    apply_events(consumer, event("auth.user.deleted", user_id=user_id,
                                 deleted_at=datetime.now(UTC)))
    applied = time.monotonic()
    wait_for(lambda: api.get(ROUTES[service], headers=headers).status_code == 401,
             timeout=1.0, interval=0.005, message="the token refused")
    assert time.monotonic() - applied < 1.0
    assert user_id in tombstones._laid  # answered from memory, not from the table


def lay_tombstone(db: Database, user_id: str) -> None:
    with db.sessions.begin() as session:
        session.execute(insert(db.tombstones).values(user_id=user_id).on_conflict_do_nothing())


def test_without_a_live_listener_the_table_answers(dbs: Callable[[str], Database]) -> None:
    db = dbs("goals")
    user_id = new_user_id()
    lay_tombstone(db, user_id)
    tombstones = Tombstones(db, horizon_s=3600)
    tombstones.start()
    tombstones.stop()  # the listener may never become live
    tombstones._live = False
    assert tombstones.refuses(user_id, issued_at=time.time())
    assert not tombstones.refuses(new_user_id(), issued_at=time.time())


def test_a_token_older_than_the_horizon_is_checked_against_the_table(
        dbs: Callable[[str], Database]) -> None:
    db = dbs("goals")
    tombstones = Tombstones(db, horizon_s=300)
    tombstones.start()
    wait_for(lambda: tombstones.live, timeout=5, message="listener live")
    user_id = new_user_id()
    lay_tombstone(db, user_id)
    wait_for(lambda: user_id in tombstones._laid, timeout=2, message="notified")
    tombstones._laid.pop(user_id)  # as if it had aged out of memory
    assert tombstones.refuses(user_id, issued_at=time.time() - 3600)
    tombstones.stop()


def test_tombstones_laid_before_the_listener_started_are_loaded(
        dbs: Callable[[str], Database]) -> None:
    db = dbs("diary")
    user_id = new_user_id()
    lay_tombstone(db, user_id)
    tombstones = Tombstones(db, horizon_s=3600)
    tombstones.start()
    wait_for(lambda: tombstones.live, timeout=5, message="listener live")
    assert user_id in tombstones._laid
    assert tombstones.refuses(user_id, issued_at=time.time())
    tombstones.stop()
