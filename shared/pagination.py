"""Keyset pagination, newest first: stable under inserts, an index range scan per page.

The cursor is opaque to clients: they pass back a page's `nextCursor`. Its format is still
exact and documented (`cursor_field`'s pattern: the last row's created_at in microseconds
since 1970, in hex, a dot, its id), so every string of that form is a cursor the API takes
and the document tells the truth about what a request may carry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, make_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar, cast

import psycopg
from marshmallow import fields, validate
from psycopg.rows import args_row
from sqlalchemy import ColumnElement, Integer, Row, Select, bindparam, literal_column, tuple_
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from shared.errors import Invalid

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


# 14 hex digits of microseconds reach the year 4253; ids are cuids (lowercase letters, digits)
CURSOR_PATTERN = r"^[0-9a-f]{1,14}\.[0-9a-z]{1,32}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
NOT_A_CURSOR = "Not a cursor returned by this API."


def cursor_field() -> fields.String:
    """The `cursor` query parameter of every keyset-paginated list."""
    return fields.String(validate=validate.Regexp(_CURSOR, error=NOT_A_CURSOR), metadata={
        "description": "The `nextCursor` of the previous page."})


def encode_cursor(created_at: datetime, id_: str) -> str:
    return f"{(created_at - _EPOCH) // _MICROSECOND:x}.{id_}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    if not _CURSOR.match(cursor):
        raise Invalid({"cursor": [NOT_A_CURSOR]})
    micros, id_ = cursor.split(".", 1)
    return _EPOCH + int(micros, 16) * _MICROSECOND, id_


def newest_first(
    session: Session,
    query: Select[Any],
    *,
    created: ColumnElement[Any],
    id_: ColumnElement[Any],
    limit: int,
    cursor: str | None = None,
) -> Page[Row[Any]]:
    """One page of `query` (a select of a table's columns) ordered by (created, id)
    descending.

    A page is rows, not mapped objects: a list is a read (cosmicpython's CQRS chapter), so
    it needs no identity map or change tracking, and skipping them halves what the ORM
    costs per row. A row reads like the object (`row.user_id`), so schemas dump either.
    """
    if cursor:
        after_created, after_id = decode_cursor(cursor)
        query = query.where(tuple_(created, id_) < tuple_(after_created, after_id))
    query = query.order_by(created.desc(), id_.desc()).limit(limit + 1)
    rows = list(session.execute(query).all())
    more = len(rows) > limit
    rows = rows[:limit]
    if not (more and rows):
        return Page(rows, None)
    last = rows[-1]._mapping
    return Page(rows, encode_cursor(last[created], last[id_]))


class Keyset:
    """A query paged by (created, id), its statements built once: the first page and the
    page after a cursor, per limit, with the cursor's values as parameters.

    For a read path that runs on every request (the diary's feed). Executing the same
    statement object again, SQLAlchemy finds its compiled form by the cache key memoized on
    that object (`newest_first` builds and keys a new statement per call). The limit is a
    literal, not a parameter: once psycopg has prepared the statement, PostgreSQL can run
    its generic plan and skip planning, which it would not with an unknown LIMIT (it costs
    that as a tenth of the table and keeps planning each execution anew).
    """

    def __init__(self, query: Select[Any], *, created: ColumnElement[Any],
                 id_: ColumnElement[Any], newest: bool = True,
                 row: Callable[..., Any] | None = None) -> None:
        """`row` makes each row from the query's values, positionally (default: a slotted
        object with the columns' names as attributes)."""
        self.created, self.id_, self.row = created, id_, row
        key = tuple_(created, id_)
        after = tuple_(bindparam("after_created", type_=created.type),
                       bindparam("after_id", type_=id_.type))
        order = (created.desc(), id_.desc()) if newest else (created.asc(), id_.asc())
        self._first = query.order_by(*order)
        self._after = query.where(key < after if newest else key > after).order_by(*order)
        self._statements: dict[tuple[bool, int], Select[Any]] = {}

    def statement(self, *, limit: int, after: bool) -> Select[Any]:
        """The statement for pages of `limit` rows (it asks for one more, to know if there
        are more), first or after a cursor."""
        found = self._statements.get((after, limit))
        if found is None:
            base = self._after if after else self._first
            found = self._statements[(after, limit)] = base.limit(
                literal_column(str(int(limit) + 1), Integer))
        return found

    def page(self, session: Session, *, limit: int, cursor: str | None = None,
             params: dict[str, Any] | None = None) -> Page[Any]:
        values = dict(params or {})
        if cursor:
            values["after_created"], values["after_id"] = decode_cursor(cursor)
        statement = self.statement(limit=limit, after=bool(cursor))
        rows = _fetch(session, statement, values, self.row)
        more = len(rows) > limit
        rows = rows[:limit]
        if not (more and rows):
            return Page(rows, None)
        last = rows[-1]
        return Page(rows, encode_cursor(getattr(last, str(self.created.key)),
                                        getattr(last, str(self.id_.key))))


@dataclass(frozen=True)
class _Compiled:
    sql: str
    defaults: dict[str, Any]
    row: Any  # psycopg row factory


_COMPILED: dict[int, tuple[Select[Any], _Compiled]] = {}


def _fetch(session: Session, statement: Select[Any], values: dict[str, Any],
           row: Callable[..., Any] | None) -> list[Any]:
    """The rows of a statement built once, straight from psycopg: SQLAlchemy compiles it
    once per process and is not asked again per call, which on the feed halves what the
    process adds to the query (measured by bench/diary.py). A row is a slotted object with
    the statement's column names as attributes, so schemas dump it like a Row. Errors come
    out as SQLAlchemy's (an outage is still a 503), and a broken connection is invalidated.
    """
    connection = session.connection()
    found = _COMPILED.get(id(statement))
    if found is None or found[0] is not statement:
        compiled = statement.compile(dialect=connection.dialect)
        names = [str(column.key) for column in statement.selected_columns]
        row = row or make_dataclass("KeysetRow", names, slots=True)
        found = _COMPILED[id(statement)] = (statement, _Compiled(
            str(compiled), dict(compiled.params), args_row(row)))
    plan = found[1]
    dbapi = cast(psycopg.Connection[Any], connection.connection.dbapi_connection)
    try:
        with dbapi.cursor(row_factory=plan.row) as cur:
            return list(cur.execute(plan.sql, {**plan.defaults, **values}).fetchall())
    except psycopg.Error as error:
        if dbapi.broken:
            connection.invalidate(error)
        raise sa_exc.DBAPIError.instance(plan.sql, None, error, psycopg.Error,
                                         hide_parameters=True) from error
