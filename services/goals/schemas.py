"""The goals HTTP contract: camelCase JSON, the seed's enum values, UTC ISO-8601 times."""

from __future__ import annotations

from datetime import UTC

from marshmallow import fields, validate

from services.goals.models import GoalPeriod, GoalStatus
from shared.pagination import cursor_field
from shared.schemas import Schema

TITLE = validate.Length(min=1, max=500)


class GoalSchema(Schema):
    id = fields.String(dump_only=True)
    userId = fields.String(attribute="user_id", dump_only=True)
    title = fields.String()
    period = fields.Enum(GoalPeriod)
    status = fields.Enum(GoalStatus, dump_only=True)
    startDate = fields.AwareDateTime(attribute="start_date", default_timezone=UTC)
    deadline = fields.AwareDateTime(default_timezone=UTC)
    completedAt = fields.AwareDateTime(attribute="completed_at", dump_only=True, allow_none=True)
    createdAt = fields.AwareDateTime(attribute="created_at", dump_only=True)
    updatedAt = fields.AwareDateTime(attribute="updated_at", dump_only=True)


class GoalCreateSchema(Schema):
    title = fields.String(required=True, validate=TITLE)
    period = fields.Enum(GoalPeriod, required=True)
    startDate = fields.AwareDateTime(
        data_key="startDate", attribute="start_date", default_timezone=UTC,
        metadata={"description": "Defaults to now."})
    deadline = fields.AwareDateTime(
        default_timezone=UTC,
        metadata={"description": "Not before startDate. Defaults to the end of the period "
                                 "containing startDate (day, ISO week, month, quarter or "
                                 "year, in UTC)."})


class GoalUpdateSchema(Schema):
    """What is sent changes; after the change the deadline must not be before startDate."""

    title = fields.String(validate=TITLE)
    period = fields.Enum(GoalPeriod)
    startDate = fields.AwareDateTime(attribute="start_date", default_timezone=UTC)
    deadline = fields.AwareDateTime(default_timezone=UTC, metadata={
        "description": "Not before startDate (the one sent, else the goal's)."})


class GoalQuerySchema(Schema):
    status = fields.Enum(GoalStatus)
    period = fields.Enum(GoalPeriod)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = cursor_field()


class GoalPageSchema(Schema):
    items = fields.List(fields.Nested(GoalSchema))
    nextCursor = fields.String(attribute="next_cursor", allow_none=True)
