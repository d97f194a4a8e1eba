"""The event contracts: a CloudEvents 1.0 envelope and, per event type, a payload (a frozen
dataclass: what handlers take) with its schema (its wire form).

Producers and consumers share these schemas, so a field renamed on one side fails loudly
at the producer's commit instead of silently at a consumer. Consumers ignore unknown
fields; a breaking change gets a new type (e.g. `goals.goal.completed.v2`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from shared import logs, tracing

GOAL_PERIODS = ("DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY")
GOAL_STATUSES = ("ACTIVE", "COMPLETED")
EXPERIENCE_LEVELS = (
    "INTERN", "JUNIOR", "MID_LEVEL", "SENIOR", "LEAD", "MANAGER", "DIRECTOR", "VP", "C_LEVEL",
)


class InvalidEvent(ValueError):
    """An envelope or payload that does not match the contract: never worth retrying."""


# -- payloads: what a handler receives, one frozen dataclass per kind of event -----------

@dataclass(frozen=True)
class UserProfile:
    user_id: str
    name: str | None = None
    image: str | None = None
    current_role: str | None = None
    experience_level: str | None = None
    industry: str | None = None
    years_of_experience: int | None = None
    current_skills: list[str] = field(default_factory=list)
    target_skills: list[str] = field(default_factory=list)
    bio: str | None = None
    current_goals: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UserDeleted:
    user_id: str
    deleted_at: datetime


@dataclass(frozen=True)
class SessionsRevoked:
    """Every access token of the user issued before `revoked_at` is to be refused
    (log out everywhere, a password change or reset)."""

    user_id: str
    revoked_at: datetime


@dataclass(frozen=True)
class GoalSnapshot:
    goal_id: str
    user_id: str
    version: int
    title: str
    period: str
    status: str
    start_date: datetime
    deadline: datetime
    completed_at: datetime | None = None


@dataclass(frozen=True)
class GoalCompleted:
    goal_id: str
    user_id: str
    version: int
    period: str
    completed_at: datetime


@dataclass(frozen=True)
class GoalWithdrawn:
    """Reopened or deleted: any award for the goal no longer stands."""

    goal_id: str
    user_id: str
    version: int
    period: str


@dataclass(frozen=True)
class PostChanged:
    post_id: str
    author_id: str
    title: str
    published_at: datetime | None = None
    version: int | None = None  # absent from events sent before diary versioned posts

    @property
    def user_id(self) -> str:
        return self.author_id


@dataclass(frozen=True)
class StoryGenerated:
    story_id: str
    user_id: str
    period: str
    generated_at: datetime


@dataclass(frozen=True)
class StoryDeleted:
    story_id: str
    user_id: str
    period: str
    deleted_at: datetime


@dataclass(frozen=True)
class StoryRequested:
    """Stories' own job: write the story `story_id` for the request `generation_id` (a later
    request for the same story supersedes it)."""

    story_id: str
    user_id: str
    period: str
    generation_id: str


@dataclass(frozen=True)
class ResyncRequested:
    """`asker` wants `producer`'s current state again (shared.resync): its read model of
    that producer is new, lost or suspect."""

    request_id: str
    asker: str
    producer: str


@dataclass(frozen=True)
class ResyncCompleted:
    """`count` snapshots answered the request `request_id`, all sent before this."""

    request_id: str
    asker: str
    count: int


# -- schemas: the wire form of each payload (validated at the producer and the consumer) --

class PayloadSchema(Schema):
    """Loads into `model`; unknown fields are ignored (a producer may add fields)."""

    model: ClassVar[type]

    class Meta:
        unknown = EXCLUDE

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Any:
        return self.model(**data)


class UserProfileSchema(PayloadSchema):
    model = UserProfile
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


class UserDeletedSchema(PayloadSchema):
    model = UserDeleted
    user_id = fields.String(required=True)
    deleted_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class SessionsRevokedSchema(PayloadSchema):
    model = SessionsRevoked
    user_id = fields.String(required=True)
    revoked_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class GoalSnapshotSchema(PayloadSchema):
    model = GoalSnapshot
    goal_id = fields.String(required=True)
    user_id = fields.String(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    period = fields.String(required=True, validate=validate.OneOf(GOAL_PERIODS))
    status = fields.String(required=True, validate=validate.OneOf(GOAL_STATUSES))
    start_date = fields.AwareDateTime(required=True, default_timezone=UTC)
    deadline = fields.AwareDateTime(required=True, default_timezone=UTC)
    completed_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC)


class GoalCompletedSchema(PayloadSchema):
    model = GoalCompleted
    goal_id = fields.String(required=True)
    user_id = fields.String(required=True)
    version = fields.Integer(required=True)
    period = fields.String(required=True, validate=validate.OneOf(GOAL_PERIODS))
    completed_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class GoalWithdrawnSchema(PayloadSchema):
    model = GoalWithdrawn
    goal_id = fields.String(required=True)
    user_id = fields.String(required=True)
    version = fields.Integer(required=True)
    period = fields.String(required=True, validate=validate.OneOf(GOAL_PERIODS))


class PostChangedSchema(PayloadSchema):
    model = PostChanged
    post_id = fields.String(required=True)
    author_id = fields.String(required=True)
    title = fields.String(required=True)
    published_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC)
    version = fields.Integer(load_default=None, allow_none=True)


class StoryGeneratedSchema(PayloadSchema):
    model = StoryGenerated
    story_id = fields.String(required=True)
    user_id = fields.String(required=True)
    period = fields.String(required=True)
    generated_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class StoryDeletedSchema(PayloadSchema):
    model = StoryDeleted
    story_id = fields.String(required=True)
    user_id = fields.String(required=True)
    period = fields.String(required=True)
    deleted_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class StoryRequestedSchema(PayloadSchema):
    model = StoryRequested
    story_id = fields.String(required=True)
    user_id = fields.String(required=True)
    period = fields.String(required=True)
    generation_id = fields.String(required=True)


class ResyncRequestedSchema(PayloadSchema):
    model = ResyncRequested
    request_id = fields.String(required=True)
    asker = fields.String(required=True)
    producer = fields.String(required=True)


class ResyncCompletedSchema(PayloadSchema):
    model = ResyncCompleted
    request_id = fields.String(required=True)
    asker = fields.String(required=True)
    count = fields.Integer(required=True)


CATALOGUE: dict[str, type[PayloadSchema]] = {
    "auth.user.registered": UserProfileSchema,
    "auth.user.updated": UserProfileSchema,
    "auth.user.deleted": UserDeletedSchema,
    "auth.user.sessions_revoked": SessionsRevokedSchema,
    "goals.goal.created": GoalSnapshotSchema,
    "goals.goal.updated": GoalSnapshotSchema,
    "goals.goal.completed": GoalCompletedSchema,
    "goals.goal.reopened": GoalWithdrawnSchema,
    "goals.goal.deleted": GoalWithdrawnSchema,
    "diary.post.published": PostChangedSchema,
    "diary.post.updated": PostChangedSchema,
    "diary.post.unpublished": PostChangedSchema,
    "diary.post.deleted": PostChangedSchema,
    "stories.story.generated": StoryGeneratedSchema,
    "stories.story.deleted": StoryDeletedSchema,
    "stories.generation.requested": StoryRequestedSchema,
    # A resync (shared.resync): asked through the asker's outbox, answered by the producer
    # with its current state (the live events' payloads and versions), addressed to the
    # asker alone (routing key `to.<asker>.<type>`), then its completion.
    "stories.resync.requested": ResyncRequestedSchema,
    "diary.resync.requested": ResyncRequestedSchema,
    "auth.user.snapshot": UserProfileSchema,
    "goals.goal.snapshot": GoalSnapshotSchema,
    "diary.post.snapshot": PostChangedSchema,
    "auth.resync.completed": ResyncCompletedSchema,
    "goals.resync.completed": ResyncCompletedSchema,
    "diary.resync.completed": ResyncCompletedSchema,
}
# Types published for which no service has a consumer yet, each with the reason.
UNCONSUMED: dict[str, str] = {
    "stories.story.deleted": "deleting a story gives no generation back, so auth's "
                             "dailyGenerationCount has nothing to adjust; published for "
                             "consumers to come",
    "stories.generation.requested": "stories' own job, consumed from a queue of its own by "
                                    "the stories worker's generation loop "
                                    "(services/stories/jobs.py), not by an event handler",
}
_SCHEMAS = {type_: schema() for type_, schema in CATALOGUE.items()}

P = TypeVar("P")


@dataclass(frozen=True)
class Event(Generic[P]):
    id: str
    type: str
    source: str
    time: datetime
    data: P
    correlation_id: str
    causation_id: str | None = None
    # The W3C trace context of what raised it (shared.tracing; None when tracing is off).
    traceparent: str | None = None
    # `data` as JSON, when the producer already made it (validated once, dumped once).
    wire_data: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def user_id(self) -> str | None:
        """The user the event is about: what a tombstone is checked against."""
        value = getattr(self.data, "user_id", None)
        return str(value) if value else None

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
        if self.traceparent:
            envelope["traceparent"] = self.traceparent
        subject = self.user_id
        if subject:
            envelope["subject"] = subject
        return envelope


def new_event(type_: str, data: Any, *, source: str) -> Event[Any]:
    """An event caused by whatever is being handled now (request or incoming event).
    `data` is the payload's dataclass or a mapping of its fields; it is checked by loading
    its wire form back, exactly as a consumer will."""
    schema = _SCHEMAS.get(type_)
    if schema is None:
        raise InvalidEvent(f"unknown event type {type_!r}")
    try:
        wire = schema.dump(data)
        payload = schema.load(wire)
    except ValidationError as exc:
        raise InvalidEvent(f"{type_}: {exc.messages}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidEvent(f"{type_}: {exc}") from exc
    event_id = str(uuid.uuid4())
    return Event(
        id=event_id,
        type=type_,
        source=source,
        time=datetime.now(UTC),
        data=payload,
        correlation_id=logs.correlation_id.get() or logs.request_id.get() or event_id,
        causation_id=logs.event_id.get() or logs.request_id.get(),
        traceparent=tracing.current_traceparent(),
        wire_data=wire,
    )


def parse_event(envelope: dict[str, Any]) -> Event[Any]:
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
            traceparent=envelope.get("traceparent") or None,
        )
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        if isinstance(exc, InvalidEvent):
            raise
        raise InvalidEvent(f"malformed event: {exc}") from exc
