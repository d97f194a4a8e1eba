"""Diary routes: translate HTTP to a use case and back."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from services.diary import usecases
from services.diary.models import Post
from services.diary.schemas import PostCreateSchema, PostSchema
from shared.http import Blueprint, authenticated, current_user_id, unit_of_work

blp = Blueprint("diary", __name__, url_prefix="/diary",
                description="Growth diary posts, their likes and replies")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


@blp.route("/posts", strict_slashes=False)
class Posts(MethodView):
    decorators = [authenticated]

    @blp.arguments(PostCreateSchema)
    @blp.response(201, PostSchema)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> Post:
        """Write a post (a draft unless status is PUBLISHED)"""
        return usecases.create_post(unit_of_work(), author_id=current_user_id(), **body)


@blp.route("/posts/<post_id>")
class PostById(MethodView):
    decorators = [authenticated]

    @blp.response(200, PostSchema)
    @blp.doc(security=SECURITY)
    def get(self, post_id: str) -> Post:
        """Read a published post, or one of my drafts"""
        return usecases.get_post(unit_of_work(), viewer_id=current_user_id(), post_id=post_id)

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, post_id: str) -> None:
        """Delete one of my posts, with its likes and replies"""
        usecases.delete_post(unit_of_work(), author_id=current_user_id(), post_id=post_id)


@blp.route("/posts/<post_id>/publish", methods=["POST"])
@blp.response(200, PostSchema)
@blp.doc(security=SECURITY)
@authenticated
def publish(post_id: str) -> Post:
    """Publish one of my drafts (idempotent)"""
    return usecases.publish_post(unit_of_work(), author_id=current_user_id(), post_id=post_id)
