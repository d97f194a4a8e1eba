"""The stories HTTP contract: camelCase JSON, UTC ISO-8601 times."""

from __future__ import annotations

from marshmallow import fields, validate

from shared.schemas import Schema


class StorySchema(Schema):
    id = fields.String(dump_only=True)
    userId = fields.String(attribute="user_id", dump_only=True)
    period = fields.String(dump_only=True,
                           metadata={"description": "2026-11-24, 2026-W48, 2026-11, 2026-Q4 "
                                                    "or 2026"})
    content = fields.String(dump_only=True)
    createdAt = fields.AwareDateTime(attribute="created_at", dump_only=True)
    updatedAt = fields.AwareDateTime(attribute="updated_at", dump_only=True)


class StoryQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(max=200))


class StoryPageSchema(Schema):
    items = fields.List(fields.Nested(StorySchema))
    nextCursor = fields.String(attribute="next_cursor", allow_none=True)
