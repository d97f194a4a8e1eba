"""The event contracts: a CloudEvents 1.0 envelope and one schema per event type.

Producers and consumers share these schemas, so a field renamed on one side fails loudly
at the producer's commit instead of silently at a consumer. Consumers ignore unknown
fields; a breaking change gets a new type (e.g. `goals.goal.completed.v2`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared import logs

GOAL_PERIODS = ("DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY")
GOAL_STATUSES = ("ACTIVE", "COMPLETED")
EXPERIENCE_LEVELS = (
    "INTERN", "JUNIOR", "MID_LEVEL", "SENIOR", "LEAD", "MANAGER", "DIRECTOR", "VP", "C_LEVEL",
)


class InvalidEvent(ValueError):
    """An envelope or payload that does not match the contract: never worth retrying."""


class EventData(Schema):
    class Meta:
        unknown = EXCLUDE


class UserProfile(EventData):
    user_id = fields.String(required=True)
    name = fields.String(allow_none=True)
    image = fields.String(allow_none=True)
    current_role = fields.String(allow_none=True)
    experience_level = fields.String(allow_none=True)
    industry = fields.String(allow_none=True)
    years_of_experience = fields.Integer(allow_none=True)
    current_skills = fields.List(fields.String(), load_default=list)
    target_skills = fields.List(fields.String(), load_default=list)
    bio = fields.String(allow_none=True)
    current_goals = fields.List(fields.String(), load_default=list)


class UserDeleted(EventData):
    user_id = fields.String(required=True)
    deleted_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class GoalSnapshot(EventData):
    goal_id = fields.String(required=True)
    user_id = fields.String(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    period = fields.String(required=True, validate=validate.OneOf(GOAL_PERIODS))
    status = fields.String(required=True, validate=validate.OneOf(GOAL_STATUSES))
    start_date = fields.AwareDateTime(required=True, default_timezone=UTC)
    deadline = fields.AwareDateTime(required=True, default_timezone=UTC)
    completed_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC)


class GoalCompleted(EventData):
    goal_id = fields.String(required=True)
    user_id = fields.String(required=True)
    version = fields.Integer(required=True)
    period = fields.String(required=True, validate=validate.OneOf(GOAL_PERIODS))
    completed_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class GoalWithdrawn(EventData):
    """Reopened or deleted: any award for the goal no longer stands."""

    goal_id = fields.String(required=True)
    user_id = fields.String(required=True)
    version = fields.Integer(required=True)
    period = fields.String(required=True, validate=validate.OneOf(GOAL_PERIODS))


class PostChanged(EventData):
    post_id = fields.String(required=True)
    author_id = fields.String(required=True)
    title = fields.String(required=True)
    published_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC)
    version = fields.Integer(load_default=None, allow_none=True)


class StoryGenerated(EventData):
    story_id = fields.String(required=True)
    user_id = fields.String(required=True)
    period = fields.String(required=True)
    generated_at = fields.AwareDateTime(required=True, default_timezone=UTC)


CATALOGUE: dict[str, type[EventData]] = {
    "auth.user.registered": UserProfile,
    "auth.user.updated": UserProfile,
    "auth.user.deleted": UserDeleted,
    "goals.goal.created": GoalSnapshot,
    "goals.goal.updated": GoalSnapshot,
    "goals.goal.completed": GoalCompleted,
    "goals.goal.reopened": GoalWithdrawn,
    "goals.goal.deleted": GoalWithdrawn,
    "diary.post.published": PostChanged,
    "diary.post.unpublished": PostChanged,
    "diary.post.deleted": PostChanged,
    "stories.story.generated": StoryGenerated,
}
_SCHEMAS = {type_: schema() for type_, schema in CATALOGUE.items()}


def subject_user(type_: str, data: dict[str, Any]) -> str | None:
    """The user an event is about: what a tombstone is checked against."""
    value = data.get("author_id" if type_.startswith("diary.post.") else "user_id")
    return str(value) if value else None


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    source: str
    time: datetime
    data: dict[str, Any]
    correlation_id: str
    causation_id: str | None = None
    # `data` as JSON, when the producer already made it (validated once, dumped once).
    wire_data: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def user_id(self) -> str | None:
        return subject_user(self.type, self.data)

    def to_dict(self) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time.isoformat(),
            "datacontenttype": "application/json",
            "correlationid": self.correlation_id,
            "data": (self.wire_data if self.wire_data is not None
                     else _SCHEMAS[self.type].dump(self.data)),
        }
        if self.causation_id:
            envelope["causationid"] = self.causation_id
        subject = self.user_id
        if subject:
            envelope["subject"] = subject
        return envelope


def new_event(type_: str, data: dict[str, Any], *, source: str) -> Event:
    """An event caused by whatever is being handled now (request or incoming event)."""
    schema = _SCHEMAS.get(type_)
    if schema is None:
        raise InvalidEvent(f"unknown event type {type_!r}")
    try:
        wire = schema.dump(data)
        errors = schema.validate(wire)
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidEvent(f"{type_}: {exc}") from exc
    if errors:
        raise InvalidEvent(f"{type_}: {errors}")
    event_id = str(uuid.uuid4())
    return Event(
        id=event_id,
        type=type_,
        source=source,
        time=datetime.now(UTC),
        data=data,
        correlation_id=logs.correlation_id.get() or logs.request_id.get() or event_id,
        causation_id=logs.event_id.get() or logs.request_id.get(),
        wire_data=wire,
    )


def parse_event(envelope: dict[str, Any]) -> Event:
    """Validate an incoming envelope and its data; unknown fields are ignored."""
    try:
        type_ = envelope["type"]
        if envelope.get("specversion") != "1.0":
            raise InvalidEvent(f"unsupported specversion {envelope.get('specversion')!r}")
        schema = _SCHEMAS.get(type_)
        if schema is None:
            raise InvalidEvent(f"unknown event type {type_!r}")
        data = schema.load(envelope.get("data") or {})
        return Event(
            id=str(envelope["id"]),
            type=type_,
            source=str(envelope["source"]),
            time=datetime.fromisoformat(envelope["time"]),
            data=data,
            correlation_id=str(envelope.get("correlationid") or envelope["id"]),
            causation_id=envelope.get("causationid"),
        )
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        if isinstance(exc, InvalidEvent):
            raise
        raise InvalidEvent(f"malformed event: {exc}") from exc
