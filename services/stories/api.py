"""Stories routes: translate HTTP to a use case and back."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app
from flask.views import MethodView
from werkzeug.routing import BaseConverter

from services.stories import usecases
from services.stories.models import Story
from services.stories.periods import PATTERN
from services.stories.schemas import (
    StoryPageSchema,
    StoryQuerySchema,
    StoryRequestSchema,
    StorySchema,
)
from services.stories.settings import current_settings
from shared.errors import NotFound
from shared.http import Blueprint, authenticated, current_user_id, unit_of_work
from shared.pagination import Page

blp = Blueprint("stories", __name__, url_prefix="/stories",
                description="AI-written stories of a user's progress in a period")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
_PERIOD = re.compile(PATTERN)


def _clock() -> usecases.Clock:
    clock: usecases.Clock = current_app.extensions["stories.clock"]
    return clock


def _period(period: str) -> str:
    """A path that cannot name a period names no story (and never reaches the database)."""
    if not _PERIOD.fullmatch(period):
        raise NotFound("No such story")
    return period


@blp.route("", strict_slashes=False)
class Stories(MethodView):
    decorators = [authenticated]

    @blp.arguments(StoryQuerySchema, location="query")
    @blp.response(200, StoryPageSchema)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Page[Any]:
        """List my stories, newest first"""
        return usecases.list_stories(unit_of_work(), user_id=current_user_id(), **query)


@blp.route("/generate")
class Generate(MethodView):
    decorators = [authenticated]  # before the body is read: anonymous is 401, whatever it sent

    @blp.arguments(StoryRequestSchema)
    @blp.response(202, StorySchema, headers={"Location": {
        "description": "/stories/{period}: where the story will be",
        "schema": {"type": "string"}}})
    @blp.alt_response(429, description="Today's generations are used up (Retry-After: "
                                       "seconds until the next UTC midnight)")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> tuple[Story, int, dict[str, str]]:
        """Have my story for a period written (again); answers at once, PENDING.

        Asking again while it is pending returns the same story and costs nothing; asking for
        a period that has a story writes it afresh and counts toward STORIES_DAILY_LIMIT."""
        story = usecases.request_story(unit_of_work(), user_id=current_user_id(),
                                       period=body["period"],
                                       daily_limit=current_settings().daily_limit,
                                       clock=_clock())
        return story, 202, {"Location": f"/stories/{story.period}"}


class PeriodConverter(BaseConverter):
    """`/stories/<period:period>`: any one path segment but `generate`, so that route's 405
    names its own methods (POST) alone, not the story's as well. Whether the segment is a
    period at all is the use case's to say (a 422 naming it)."""

    regex = r"(?!generate/?$)[^/]+"


@blp.route("/<period:period>")
class StoryByPeriod(MethodView):
    decorators = [authenticated]

    @blp.response(200, StorySchema)
    @blp.doc(security=SECURITY)
    def get(self, period: str) -> Story:
        """Read my story for a period: PENDING, READY (content) or FAILED (error)"""
        return usecases.get_story(unit_of_work(), user_id=current_user_id(),
                                  period=_period(period))

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, period: str) -> None:
        """Delete my story for a period"""
        usecases.delete_story(unit_of_work(), user_id=current_user_id(),
                              period=_period(period), clock=_clock())
