"""What the stories service does. Plain functions of a unit of work; no Flask here.

Writing stories is a later step; for now a user can list theirs, and a deleted user's
stories and every copy of their data go.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.orm import Session

from services.stories.models import (
    DeletedGoal,
    GoalView,
    PostView,
    Profile,
    Story,
    WithdrawnPost,
)
from shared.db import UnitOfWork
from shared.pagination import Page, newest_first


def list_stories(
    uow: UnitOfWork, *, user_id: str, limit: int = 50, cursor: str | None = None
) -> Page[Row[Any]]:
    """Newest first, a keyset page at a time."""
    stories = Story.__table__.c
    with uow.read_only():
        return newest_first(uow.session, select(Story.__table__).where(
            stories.user_id == user_id), created=stories.created_at, id_=stories.id,
            limit=limit, cursor=cursor)


def forget_user(session: Session, *, user_id: str) -> None:
    """A deleted user's stories and every copy of their data go (the consumer has already
    laid the tombstone, so no late event brings them back)."""
    session.execute(delete(Story).where(Story.user_id == user_id))
    session.execute(delete(Profile).where(Profile.user_id == user_id))
    session.execute(delete(GoalView).where(GoalView.user_id == user_id))
    session.execute(delete(DeletedGoal).where(DeletedGoal.user_id == user_id))
    session.execute(delete(PostView).where(PostView.author_id == user_id))
    session.execute(delete(WithdrawnPost).where(WithdrawnPost.author_id == user_id))
