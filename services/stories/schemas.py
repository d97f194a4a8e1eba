"""The stories HTTP contract: camelCase JSON, UTC ISO-8601 times."""

from __future__ import annotations

from marshmallow import fields, validate

from services.stories.periods import KINDS, PATTERN
from shared.pagination import cursor_field
from shared.schemas import Schema

PERIOD_HELP = ("A UTC calendar span: a day (2026-12-01), an ISO week (2026-W49), a month "
               "(2026-12), a quarter (2026-Q4) or a year (2026); one that has not started "
               "yet is refused.")


class StorySchema(Schema):
    id = fields.String(dump_only=True)
    userId = fields.String(attribute="user_id", dump_only=True)
    period = fields.String(dump_only=True, metadata={"description": PERIOD_HELP})
    periodKind = fields.String(attribute="period_kind", dump_only=True,
                               validate=validate.OneOf(KINDS))
    periodStart = fields.AwareDateTime(attribute="period_start", dump_only=True, metadata={
        "description": "The period's first instant (UTC)."})
    periodEnd = fields.AwareDateTime(attribute="period_end", dump_only=True, metadata={
        "description": "The next period's first instant: the span is [periodStart, periodEnd)."})
    status = fields.String(dump_only=True, validate=validate.OneOf(("PENDING", "READY",
                                                                    "FAILED")))
    content = fields.String(dump_only=True, allow_none=True,
                            metadata={"description": "The story, once READY."})
    error = fields.String(dump_only=True, allow_none=True,
                          metadata={"description": "Why it FAILED, for a person to read."})
    generatedAt = fields.AwareDateTime(attribute="generated_at", dump_only=True,
                                       allow_none=True)
    createdAt = fields.AwareDateTime(attribute="created_at", dump_only=True)
    updatedAt = fields.AwareDateTime(attribute="updated_at", dump_only=True)


class StoryRequestSchema(Schema):
    period = fields.String(required=True, validate=validate.Regexp(PATTERN),
                           metadata={"description": PERIOD_HELP, "example": "2026-W49"})


class StoryQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = cursor_field()


class StoryPageSchema(Schema):
    items = fields.List(fields.Nested(StorySchema))
    nextCursor = fields.String(attribute="next_cursor", allow_none=True)
