"""Keyset pagination, newest first: stable under inserts, an index range scan per page.

The cursor is opaque to clients: they pass back a page's `nextCursor`. Its format is still
exact and documented (`cursor_field`'s pattern: the last row's created_at in microseconds
since 1970, in hex, a dot, its id), so every string of that form is a cursor the API takes
and the document tells the truth about what a request may carry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from marshmallow import fields, validate
from sqlalchemy import ColumnElement, Integer, Select, bindparam, literal_column, tuple_
from sqlalchemy.orm import Session

from shared.db import fetch
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


class Keyset:
    """A query paged by (created, id), its statements built once: the first page and the
    page after a cursor, per limit, with the cursor's values as parameters.

    Every list of the API is one (goals, stories, the diary's feed and pages): built at
    import, each statement is compiled once per process and run straight on psycopg
    (shared.db.fetch). A page is rows, not mapped objects: a list is a read (cosmicpython's
    CQRS chapter), so it needs no identity map or change tracking. The limit is a
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
        rows = fetch(session, statement, values, row=self.row)
        more = len(rows) > limit
        rows = rows[:limit]
        if not (more and rows):
            return Page(rows, None)
        last = rows[-1]
        return Page(rows, encode_cursor(getattr(last, str(self.created.key)),
                                        getattr(last, str(self.id_.key))))


def walk(query: Select[Any], key: Any, payload: Callable[[Any], dict[str, Any]]
         ) -> Callable[[Session, str | None, int], list[tuple[str, dict[str, Any]]]]:
    """Pages of the entities `query` selects (mapped objects) in the order of their primary
    key `key` (a mapped attribute), each as (its key, `payload` of it), after a key or from
    the start: what a producer answers a resync with (shared.resync's ReadPage). Here, not
    in shared.resync: the modules that define a source are the web processes' too, and
    those load nothing of the bus."""
    name = key.key

    def read(session: Session, after: str | None, limit: int) -> list[tuple[str, dict[str, Any]]]:
        page = query.order_by(key).limit(limit)
        if after is not None:
            page = page.where(key > after)
        return [(getattr(entity, name), payload(entity)) for entity in session.scalars(page)]

    return read
