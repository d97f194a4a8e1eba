"""Stories routes: translate HTTP to a use case and back."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Row

from services.stories import usecases
from services.stories.schemas import StoryPageSchema, StoryQuerySchema
from shared.http import Blueprint, authenticated, current_user_id, unit_of_work
from shared.pagination import Page

blp = Blueprint("stories", __name__, url_prefix="/stories",
                description="AI-written stories of a user's progress in a period")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


@blp.route("", strict_slashes=False)
class Stories(MethodView):
    decorators = [authenticated]

    @blp.arguments(StoryQuerySchema, location="query")
    @blp.response(200, StoryPageSchema)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Page[Row[Any]]:
        """List my stories, newest first"""
        return usecases.list_stories(unit_of_work(), user_id=current_user_id(), **query)
