"""The diary HTTP contract: camelCase JSON, the seed's enum values, UTC ISO-8601 times."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import fields, validate

from services.diary.models import PostStatus
from shared.fields import Trimmed
from shared.pagination import cursor_field
from shared.schemas import Schema

TITLE = 200  # characters, as the seed's VarChar(200)
CONTENT = 50_000
REPLY = 5_000
LIMIT = validate.Range(min=1, max=100)


class AuthorSchema(Schema):
    """Built by the database as the JSON object it answers (usecases._author): dumping it
    hands that object over as it is."""

    id = fields.String(required=True)
    name = fields.String(required=True, allow_none=True, metadata={
        "description": "Null until the author's profile has reached the diary."})
    image = fields.String(required=True, allow_none=True)

    def compiled_dumper(self) -> Callable[[Any], dict[str, Any]] | None:
        general = super().compiled_dumper()
        if general is None:
            return None

        def dump(author: Any) -> dict[str, Any]:
            return author if type(author) is dict else general(author)

        return dump


class PostSchema(Schema):
    id = fields.String(dump_only=True)
    title = fields.String(dump_only=True)
    content = fields.String(dump_only=True)
    status = fields.Enum(PostStatus, dump_only=True)
    author = fields.Nested(AuthorSchema, dump_only=True)
    likeCount = fields.Integer(attribute="like_count", dump_only=True)
    replyCount = fields.Integer(attribute="reply_count", dump_only=True)
    likedByMe = fields.Boolean(attribute="liked_by_me", dump_only=True)
    publishedAt = fields.AwareDateTime(attribute="published_at", dump_only=True,
                                       allow_none=True,
                                       metadata={"description": "Null for a draft."})
    createdAt = fields.AwareDateTime(attribute="created_at", dump_only=True)
    updatedAt = fields.AwareDateTime(attribute="updated_at", dump_only=True)


class PostPageSchema(Schema):
    items = fields.List(fields.Nested(PostSchema))
    nextCursor = fields.String(attribute="next_cursor", allow_none=True)


class PostCreateSchema(Schema):
    title = Trimmed(required=True, max_length=TITLE)
    content = Trimmed(required=True, max_length=CONTENT)
    status = fields.Enum(PostStatus, load_default=PostStatus.DRAFT,
                         metadata={"description": "PUBLISHED publishes at once; "
                                                  "defaults to DRAFT."})


class PostUpdateSchema(Schema):
    title = Trimmed(max_length=TITLE)
    content = Trimmed(max_length=CONTENT)


class PageQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=LIMIT)
    cursor = cursor_field()


class UserPostsQuerySchema(PageQuerySchema):
    status = fields.Enum(PostStatus, metadata={
        "description": "DRAFT is only ever yours: others' drafts list as nothing."})


class LikeStateSchema(Schema):
    likeCount = fields.Integer(attribute="like_count", dump_only=True)
    likedByMe = fields.Boolean(attribute="liked_by_me", dump_only=True)


class LikeSchema(Schema):
    user = fields.Nested(AuthorSchema, dump_only=True)
    createdAt = fields.AwareDateTime(attribute="created_at", dump_only=True)


class LikePageSchema(Schema):
    items = fields.List(fields.Nested(LikeSchema))
    nextCursor = fields.String(attribute="next_cursor", allow_none=True)


class ReplySchema(Schema):
    id = fields.String(dump_only=True)
    postId = fields.String(attribute="post_id", dump_only=True)
    content = fields.String(dump_only=True)
    author = fields.Nested(AuthorSchema, dump_only=True)
    createdAt = fields.AwareDateTime(attribute="created_at", dump_only=True)
    updatedAt = fields.AwareDateTime(attribute="updated_at", dump_only=True)


class ReplyPageSchema(Schema):
    items = fields.List(fields.Nested(ReplySchema))
    nextCursor = fields.String(attribute="next_cursor", allow_none=True)


class ReplyWriteSchema(Schema):
    content = Trimmed(required=True, max_length=REPLY)
