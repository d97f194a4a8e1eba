"""What the diary tests share: a user with a token, writing posts through the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from services.diary.models import Like, PostStats, Reply
from shared.db import Database
from tests.helpers import new_user_id


@dataclass(frozen=True)
class Member:
    id: str
    headers: dict[str, str]


@pytest.fixture
def member(auth_header: Callable[[str], dict[str, str]]) -> Callable[[], Member]:
    def make() -> Member:
        user_id = new_user_id()
        return Member(user_id, auth_header(user_id))

    return make


@pytest.fixture
def diary(client: Callable[[str], Any]) -> Any:
    return client("diary")


@pytest.fixture
def db(dbs: Callable[[str], Database]) -> Database:
    return dbs("diary")


def write(diary: Any, who: Member, **body: Any) -> dict[str, Any]:
    response = diary.post("/diary/posts", json={
        "title": "Week 48", "content": "Shipped the outbox.", **body}, headers=who.headers)
    assert response.status_code == 201, response.json
    return dict(response.json)


def true_counts(db: Database, post_id: str) -> tuple[int, int]:
    """(likes, replies) counted from the rows."""
    with db.sessions() as session:
        likes = len(session.scalars(select(Like.id).where(Like.post_id == post_id)).all())
        replies = len(session.scalars(select(Reply.id).where(Reply.post_id == post_id)).all())
    return likes, replies


def kept_counts(db: Database, post_id: str) -> tuple[int, int] | None:
    """(likeCount, replyCount) as post_stats keeps them."""
    with db.sessions() as session:
        row = session.get(PostStats, post_id)
        return None if row is None else (row.like_count, row.reply_count)
