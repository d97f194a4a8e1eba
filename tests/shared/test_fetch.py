"""shared.db.fetch: a statement built once, run straight on psycopg. A read on its own takes a
pooled connection in autocommit and gives it back as it found it; inside a unit of work
it runs on the session's connection, in its transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import String, bindparam, select
from sqlalchemy.exc import DBAPIError

from services.goals.models import Goal, GoalPeriod, GoalStatus
from shared.db import Database, UnitOfWork, fetch, fetch_one, is_database_outage, utcnow
from shared.errors import NotFound
from tests.helpers import TcpProxy, new_user_id

BY_USER = select(Goal.__table__.c.id, Goal.__table__.c.title).where(
    Goal.__table__.c.user_id == bindparam("user_id", type_=String))


def _goal(user_id: str, title: str) -> Goal:
    now = utcnow()
    return Goal(user_id=user_id, title=title, period=GoalPeriod.DAILY,
                status=GoalStatus.ACTIVE, start_date=now, deadline=now, version=1)


def _commit_goal(db: Database, user_id: str, title: str) -> None:
    with UnitOfWork(db, source="goals") as uow:
        uow.session.add(_goal(user_id, title))
        uow.commit()


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
    _commit_goal(db, user, "written")
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
    _commit_goal(db, user, "only one")

    def as_tuple(*values: Any) -> tuple[Any, ...]:
        return values

    with UnitOfWork(db, source="goals").read_only() as uow:
        found = fetch_one(uow.session, BY_USER, {"user_id": user}, "No such goal", row=as_tuple)
        assert isinstance(found, tuple) and found[1] == "only one"
        with pytest.raises(NotFound):
            fetch_one(uow.session, BY_USER, {"user_id": new_user_id()}, "No such goal")


def test_an_outage_is_sqlalchemys_error_and_drops_every_pooled_connection(
        dbs: Callable[[str], Database]) -> None:
    """Whether the statement fails on a pooled connection the database dropped or no new
    connection can be made, fetch raises what the session would (so the edge answers 503),
    and the connections pooled before the failure are not handed out again."""
    url = dbs("goals").engine.url
    proxy = TcpProxy(url.port or 5432, url.host or "127.0.0.1")
    db = Database(url.set(port=proxy.port).render_as_string(hide_password=False), "goals")
    user = new_user_id()
    try:
        held = [db.engine.raw_connection() for _ in range(3)]  # three pooled connections
        for c in held:
            c.close()
        proxy.cut()
        errors = []
        for read_only in (True, True, False):
            uow = UnitOfWork(db, source="goals")
            with pytest.raises(DBAPIError) as raised, \
                    (uow.read_only() if read_only else uow) as uow:
                fetch(uow.session, BY_USER, {"user_id": user})
            errors.append(raised.value)
        assert all(is_database_outage(e) for e in errors)
        # The first met a dropped connection; the others found none left to try and
        # could not connect (three pooled connections, three failures).
        assert "consuming input failed" in str(errors[0])
        assert all("connection failed" in str(e) for e in errors[1:]), errors
        proxy.restore()
        with UnitOfWork(db, source="goals").read_only() as uow:
            assert fetch(uow.session, BY_USER, {"user_id": user}) == []

        # Inside a unit of work, on the session's connection: the same error, the session's
        # connection invalidated (its rollback does not fail), the next unit of work fine.
        with pytest.raises(DBAPIError) as raised, UnitOfWork(db, source="goals") as uow:
            uow.session.connection()  # checked out before the outage
            proxy.cut()
            fetch(uow.session, BY_USER, {"user_id": user})
        assert is_database_outage(raised.value), raised.value
        assert "consuming input failed" in str(raised.value)
        proxy.restore()
        with UnitOfWork(db, source="goals") as uow:
            assert fetch(uow.session, BY_USER, {"user_id": user}) == []
    finally:
        proxy.close()
        db.dispose()
