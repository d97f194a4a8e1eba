"""shared.db.fetch: a statement built once, run straight on psycopg. A read on its own takes a
pooled connection in autocommit and gives it back as it found it; inside a unit of work
it runs on the session's connection, in its transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import String, bindparam, select

from services.goals.models import Goal, GoalPeriod, GoalStatus
from shared.db import Database, UnitOfWork, fetch, fetch_one, utcnow
from shared.errors import NotFound
from tests.helpers import new_user_id

BY_USER = select(Goal.__table__.c.id, Goal.__table__.c.title).where(
    Goal.__table__.c.user_id == bindparam("user_id", type_=String))


def _goal(user_id: str, title: str) -> Goal:
    now = utcnow()
    return Goal(user_id=user_id, title=title, period=GoalPeriod.DAILY,
                status=GoalStatus.ACTIVE, start_date=now, deadline=now, version=1)


def _pooled_autocommit(db: Database, connections: int) -> list[bool]:
    """The autocommit flag of `connections` pooled connections checked out at once."""
    held = [db.engine.raw_connection() for _ in range(connections)]
    try:
        return [bool(c.dbapi_connection.autocommit) for c in held]  # type: ignore[union-attr]
    finally:
        for c in held:
            c.close()


def test_a_read_on_its_own_leaves_its_pooled_connection_transactional(
        dbs: Callable[[str], Database]) -> None:
    db = dbs("goals")
    user = new_user_id()
    with UnitOfWork(db, source="goals") as uow:
        uow.session.add(_goal(user, "written"))
        uow.commit()
    for _ in range(3):
        with UnitOfWork(db, source="goals").read_only() as uow:
            rows = fetch(uow.session, BY_USER, {"user_id": user})
        assert [r.title for r in rows] == ["written"]
    assert _pooled_autocommit(db, 3) == [False, False, False]

    # A write after those reads is still one transaction: rolled back, nothing is left.
    with UnitOfWork(db, source="goals") as uow:
        uow.session.add(_goal(user, "rolled back"))
        uow.session.flush()
    with UnitOfWork(db, source="goals").read_only() as uow:
        assert [r.title for r in fetch(uow.session, BY_USER, {"user_id": user})] == ["written"]


def test_inside_a_unit_of_work_it_sees_what_the_transaction_flushed(
        dbs: Callable[[str], Database]) -> None:
    db = dbs("goals")
    user = new_user_id()
    with UnitOfWork(db, source="goals") as uow:
        uow.session.add(_goal(user, "flushed, not committed"))
        uow.session.flush()
        inside = fetch(uow.session, BY_USER, {"user_id": user})
    assert [r.title for r in inside] == ["flushed, not committed"]
    with UnitOfWork(db, source="goals").read_only() as uow:
        assert fetch(uow.session, BY_USER, {"user_id": user}) == []


def test_fetch_one_is_the_row_or_not_found_and_rows_are_made_by_the_factory(
        dbs: Callable[[str], Database]) -> None:
    db = dbs("goals")
    user = new_user_id()
    with UnitOfWork(db, source="goals") as uow:
        uow.session.add(_goal(user, "only one"))
        uow.commit()

    def as_tuple(*values: Any) -> tuple[Any, ...]:
        return values

    with UnitOfWork(db, source="goals").read_only() as uow:
        found = fetch_one(uow.session, BY_USER, {"user_id": user}, "No such goal", row=as_tuple)
        assert isinstance(found, tuple) and found[1] == "only one"
        with pytest.raises(NotFound):
            fetch_one(uow.session, BY_USER, {"user_id": new_user_id()}, "No such goal")
