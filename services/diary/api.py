"""Diary routes: translate HTTP to a use case and back."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from services.diary import usecases
from services.diary.schemas import (
    LikePageSchema,
    LikeStateSchema,
    PageQuerySchema,
    PostCreateSchema,
    PostPageSchema,
    PostSchema,
    PostUpdateSchema,
    ReplyPageSchema,
    ReplySchema,
    ReplyWriteSchema,
    UserPostsQuerySchema,
)
from shared.http import Blueprint, authenticated, current_user_id, unit_of_work
from shared.pagination import Page

blp = Blueprint("diary", __name__, url_prefix="/diary",
                description="Growth diary posts, their likes and replies")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
@blp.route("/posts", strict_slashes=False)
class Posts(MethodView):
    decorators = [authenticated]

    @blp.arguments(PostCreateSchema)
    @blp.response(201, PostSchema)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> Any:
        """Write a post (a draft unless status is PUBLISHED)"""
        return usecases.create_post(unit_of_work(), author_id=current_user_id(), **body)


@blp.route("/posts/<post_id>")
class PostById(MethodView):
    decorators = [authenticated]

    @blp.response(200, PostSchema)
    @blp.doc(security=SECURITY)
    def get(self, post_id: str) -> Any:
        """Read a published post, or one of my drafts"""
        return usecases.get_post(unit_of_work(), viewer_id=current_user_id(), post_id=post_id)

    @blp.arguments(PostUpdateSchema)
    @blp.response(200, PostSchema)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], post_id: str) -> Any:
        """Change the title or content of one of my posts"""
        return usecases.update_post(unit_of_work(), author_id=current_user_id(),
                                    post_id=post_id, **body)

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, post_id: str) -> None:
        """Delete one of my posts, with its likes and replies"""
        usecases.delete_post(unit_of_work(), author_id=current_user_id(), post_id=post_id)


@blp.route("/posts/<post_id>/publish", methods=["POST"])
@blp.response(200, PostSchema)
@blp.doc(security=SECURITY)
@authenticated
def publish(post_id: str) -> Any:
    """Publish one of my drafts (idempotent)"""
    return usecases.publish_post(unit_of_work(), author_id=current_user_id(), post_id=post_id)


@blp.route("/posts/<post_id>/unpublish", methods=["POST"])
@blp.response(200, PostSchema)
@blp.doc(security=SECURITY)
@authenticated
def unpublish(post_id: str) -> Any:
    """Make one of my posts a draft again, keeping its likes and replies (idempotent)"""
    return usecases.unpublish_post(unit_of_work(), author_id=current_user_id(),
                                   post_id=post_id)


@blp.route("/feed", methods=["GET"])
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, PostPageSchema)
@blp.doc(security=SECURITY)
@authenticated
def feed(query: dict[str, Any]) -> Page[Any]:
    """Everyone's published posts, newest published first"""
    return usecases.feed(unit_of_work(), viewer_id=current_user_id(), **query)


@blp.route("/users/<user_id>/posts", methods=["GET"])
@blp.arguments(UserPostsQuerySchema, location="query")
@blp.response(200, PostPageSchema)
@blp.doc(security=SECURITY)
@authenticated
def user_posts(query: dict[str, Any], user_id: str) -> Page[Any]:
    """A user's published posts, newest written first; my own page also has my drafts"""
    return usecases.user_posts(unit_of_work(), viewer_id=current_user_id(), user_id=user_id,
                               **query)


@blp.route("/posts/<post_id>/like")
class PostLike(MethodView):
    decorators = [authenticated]

    @blp.response(200, LikeStateSchema)
    @blp.doc(security=SECURITY)
    def put(self, post_id: str) -> dict[str, Any]:
        """Like a published post (idempotent)"""
        return usecases.like_post(unit_of_work(), user_id=current_user_id(), post_id=post_id)

    @blp.response(200, LikeStateSchema)
    @blp.doc(security=SECURITY)
    def delete(self, post_id: str) -> dict[str, Any]:
        """Take my like back (idempotent)"""
        return usecases.unlike_post(unit_of_work(), user_id=current_user_id(),
                                    post_id=post_id)


@blp.route("/posts/<post_id>/likes", methods=["GET"])
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, LikePageSchema)
@blp.doc(security=SECURITY)
@authenticated
def post_likes(query: dict[str, Any], post_id: str) -> Page[Any]:
    """Who liked a post, newest first"""
    return usecases.post_likes(unit_of_work(), viewer_id=current_user_id(), post_id=post_id,
                               **query)


@blp.route("/posts/<post_id>/replies")
class PostReplies(MethodView):
    decorators = [authenticated]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, ReplyPageSchema)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any], post_id: str) -> Page[Any]:
        """A post's replies, oldest first"""
        return usecases.post_replies(unit_of_work(), viewer_id=current_user_id(),
                                     post_id=post_id, **query)

    @blp.arguments(ReplyWriteSchema)
    @blp.response(201, ReplySchema)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], post_id: str) -> Any:
        """Reply to a published post"""
        return usecases.add_reply(unit_of_work(), author_id=current_user_id(), post_id=post_id,
                                  **body)


@blp.route("/replies/<reply_id>")
class ReplyById(MethodView):
    decorators = [authenticated]

    @blp.arguments(ReplyWriteSchema)
    @blp.response(200, ReplySchema)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], reply_id: str) -> Any:
        """Change one of my replies"""
        return usecases.edit_reply(unit_of_work(), author_id=current_user_id(),
                                   reply_id=reply_id, **body)

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, reply_id: str) -> None:
        """Delete one of my replies, or a reply on one of my posts"""
        usecases.delete_reply(unit_of_work(), user_id=current_user_id(), reply_id=reply_id)
