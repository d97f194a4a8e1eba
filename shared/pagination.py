"""Keyset pagination, newest first: stable under inserts, an index range scan per page.

The cursor is opaque to clients: they pass back a page's `nextCursor`. Its format is still
exact and documented (`cursor_field`'s pattern: the last row's created_at in microseconds
since 1970, in hex, a dot, its id), so every string of that form is a cursor the API takes
and the document tells the truth about what a request may carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from marshmallow import fields, validate
from sqlalchemy import ColumnElement, Row, Select, tuple_
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
