"""The diary HTTP contract: camelCase JSON, the seed's enum values, UTC ISO-8601 times."""

from __future__ import annotations

from marshmallow import fields, validate

from services.diary.models import PostStatus
from shared.schemas import Schema

TITLE = validate.Length(min=1, max=500)
CONTENT = validate.Length(min=1, max=50_000)


class PostSchema(Schema):
    id = fields.String(dump_only=True)
    authorId = fields.String(attribute="author_id", dump_only=True)
    title = fields.String()
    content = fields.String()
    status = fields.Enum(PostStatus, dump_only=True)
    createdAt = fields.AwareDateTime(attribute="created_at", dump_only=True)
    updatedAt = fields.AwareDateTime(attribute="updated_at", dump_only=True)
    publishedAt = fields.AwareDateTime(attribute="published_at", dump_only=True)


class PostCreateSchema(Schema):
    title = fields.String(required=True, validate=TITLE)
    content = fields.String(required=True, validate=CONTENT)
    status = fields.Enum(PostStatus, load_default=PostStatus.DRAFT,
                         metadata={"description": "PUBLISHED publishes at once; "
                                                  "defaults to DRAFT."})
