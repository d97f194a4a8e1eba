"""Keyset pagination, newest first: stable under inserts, an index range scan per page.

The cursor is opaque to clients (base64 of the last row's created_at and id).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, Select, tuple_
from sqlalchemy.orm import Session

from shared.errors import Invalid

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, id_: str) -> str:
    raw = f"{created_at.isoformat()}|{id_}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, id_ = raw.split("|", 1)
        if "\x00" in id_:  # PostgreSQL cannot take it as a parameter
            raise ValueError("NUL in a cursor")
        return datetime.fromisoformat(created), id_
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid({"cursor": ["Not a cursor returned by this API."]}) from exc


def newest_first(
    session: Session,
    query: Select[Any],
    *,
    created: ColumnElement[Any],
    id_: ColumnElement[Any],
    limit: int,
    cursor: str | None = None,
    params: dict[str, Any] | None = None,
) -> Page[Row[Any]]:
    """One page of `query` (a select of columns; `params` for its bound parameters)
    ordered by (created, id) descending.

    A page is rows, not mapped objects: a list is a read (cosmicpython's CQRS chapter), so
    it needs no identity map or change tracking, and skipping them halves what the ORM
    costs per row. A row reads like the object (`row.user_id`), so schemas dump either.
    """
    return _page(session, query, created=created, id_=id_, limit=limit, cursor=cursor,
                 params=params, newest=True)


def oldest_first(
    session: Session,
    query: Select[Any],
    *,
    created: ColumnElement[Any],
    id_: ColumnElement[Any],
    limit: int,
    cursor: str | None = None,
    params: dict[str, Any] | None = None,
) -> Page[Row[Any]]:
    """`newest_first` the other way round: (created, id) ascending (a post's replies)."""
    return _page(session, query, created=created, id_=id_, limit=limit, cursor=cursor,
                 params=params, newest=False)


def _page(session: Session, query: Select[Any], *, created: ColumnElement[Any],
          id_: ColumnElement[Any], limit: int, cursor: str | None,
          params: dict[str, Any] | None, newest: bool) -> Page[Row[Any]]:
    if cursor:
        after_created, after_id = decode_cursor(cursor)
        key, after = tuple_(created, id_), tuple_(after_created, after_id)
        query = query.where(key < after if newest else key > after)
    order = (created.desc(), id_.desc()) if newest else (created.asc(), id_.asc())
    query = query.order_by(*order).limit(limit + 1)
    rows = list(session.execute(query, params or {}).all())
    more = len(rows) > limit
    rows = rows[:limit]
    if not (more and rows):
        return Page(rows, None)
    last = rows[-1]._mapping
    return Page(rows, encode_cursor(last[created], last[id_]))
