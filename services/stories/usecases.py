"""What the stories service does. Plain functions of a unit of work; no Flask here.

Writing stories is a later step; for now a user can list theirs, and a deleted user's
stories and every copy of their data go.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from services.stories.models import DeletedGoal, GoalView, PostView, Profile, Story
from shared.errors import Invalid


@dataclass(frozen=True)
class StoryPage:
    items: list[Story]
    next_cursor: str | None


def encode_cursor(story: Story) -> str:
    raw = f"{story.created_at.isoformat()}|{story.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, story_id = raw.split("|", 1)
        return datetime.fromisoformat(created), story_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid({"cursor": ["Not a cursor returned by this API."]}) from exc


def list_stories(
    session: Session, *, user_id: str, limit: int = 50, cursor: str | None = None
) -> StoryPage:
    """Newest first, a keyset page at a time."""
    query = select(Story).where(Story.user_id == user_id)
    if cursor:
        created, story_id = decode_cursor(cursor)
        query = query.where(tuple_(Story.created_at, Story.id) < tuple_(created, story_id))
    stories = list(session.scalars(
        query.order_by(Story.created_at.desc(), Story.id.desc()).limit(limit + 1)))
    more = len(stories) > limit
    stories = stories[:limit]
    return StoryPage(stories, encode_cursor(stories[-1]) if more and stories else None)


def forget_user(session: Session, *, user_id: str) -> None:
    """A deleted user's stories and every copy of their data go (the consumer has already
    laid the tombstone, so no late event brings them back)."""
    session.execute(delete(Story).where(Story.user_id == user_id))
    session.execute(delete(Profile).where(Profile.user_id == user_id))
    session.execute(delete(GoalView).where(GoalView.user_id == user_id))
    session.execute(delete(DeletedGoal).where(DeletedGoal.user_id == user_id))
    session.execute(delete(PostView).where(PostView.author_id == user_id))
