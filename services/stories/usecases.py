"""What the stories service does. Plain functions of a unit of work; no Flask here.

A request for a story (`request_story`) commits the PENDING story, its slot of the user's
daily count and the job for the worker in one transaction, and answers at once; the worker
writes the story (`write_story`) outside any transaction, then records READY or FAILED.
Only the owner may see or touch a story: anyone else is told it does not exist.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Date, Integer, String, Table, bindparam, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.stories import periods
from services.stories.generators import (
    GenerationFailed,
    GoalFacts,
    PostFacts,
    ProfileFacts,
    StoryGenerator,
    StoryRequest,
)
from services.stories.models import (
    DeletedGoal,
    GenerationCount,
    GoalView,
    PostView,
    Profile,
    Story,
    WithdrawnPost,
)
from services.stories.readmodels import PROFILE_FIELDS
from shared.db import UnitOfWork, first_or_not_found, utcnow
from shared.errors import Invalid, TooManyRequests
from shared.events import StoryRequested
from shared.ids import new_id
from shared.pagination import Keyset, Page

log = logging.getLogger(__name__)

PENDING, READY, FAILED = "PENDING", "READY", "FAILED"
OVER_LIMIT = "You have used today's story generations; try again after midnight UTC"
TOO_LONG = "The story took too long to write; please try again."
BROKEN = "The story could not be written; please try again."
MAX_FACTS = 50  # of each kind in one story: the prompt stays bounded
Clock = Callable[[], datetime]


def _period(period_id: str, now: datetime) -> periods.Period:
    try:
        return periods.started(period_id, now=now)
    except periods.InvalidPeriod as exc:
        raise Invalid({"period": [str(exc)]}) from exc


_COUNTS_TABLE = cast(Table, GenerationCount.__table__)
_COUNTS = _COUNTS_TABLE.c
# Built once (executing the same statement object, SQLAlchemy finds its compiled form by a
# cache key memoized on it): the request path's two statements.
_ADMIT = (
    insert(_COUNTS_TABLE)
    .values(user_id=bindparam("user_id", type_=String), day=bindparam("day", type_=Date), n=1)
    .on_conflict_do_update(index_elements=[_COUNTS.user_id, _COUNTS.day],
                           set_={"n": _COUNTS.n + 1},
                           where=_COUNTS.n < bindparam("limit", type_=Integer))
    .returning(_COUNTS.n))


def _admit(session: Session, *, user_id: str, day: date, limit: int) -> bool:
    """One slot of the user's count for `day`, taken in one statement only while under
    `limit` (no row back: the day is used up)."""
    if limit <= 0:
        return False
    return session.execute(_ADMIT, {"user_id": user_id, "day": day, "limit": limit}
                           ).first() is not None


def _refund(session: Session, *, user_id: str, day: date | None) -> None:
    if day is not None:
        session.execute(update(GenerationCount)
                        .where(GenerationCount.user_id == user_id, GenerationCount.day == day,
                               GenerationCount.n > 0)
                        .values(n=GenerationCount.n - 1))


def seconds_to_midnight(now: datetime) -> int:
    return max(1, math.ceil((periods.next_midnight(now) - now).total_seconds()))


_STORY = cast(Table, Story.__table__)
_NEW_STORY = (
    insert(_STORY)
    .values({name: bindparam(name, type_=_STORY.c[name].type) for name in (
        "id", "user_id", "period", "period_kind", "period_start", "period_end", "status",
        "content", "error", "generated_at", "generation_id", "requested_at", "admitted_on")})
    .on_conflict_do_nothing(index_elements=[_STORY.c.user_id, _STORY.c.period])
    .returning(*_STORY.c))


def request_story(uow: UnitOfWork, *, user_id: str, period: str, daily_limit: int,
                  clock: Clock = utcnow) -> Any:
    """The user's story for `period`, PENDING: new, or the same row written afresh (which
    counts), or the one already pending (which costs nothing)."""
    now = clock()
    span = _period(period, now)
    fresh = {"status": PENDING, "content": None, "error": None, "generated_at": None,
             "generation_id": new_id(), "requested_at": now, "admitted_on": now.date()}
    with uow:
        session = uow.session
        # The common case in one statement: a story new for this period (a row back, which
        # reads like the model). The unique (user_id, period) makes a concurrent first
        # request wait here, then find it.
        story: Any = session.execute(_NEW_STORY, {
            "id": new_id(), "user_id": user_id, "period": span.id, "period_kind": span.kind,
            "period_start": span.start, "period_end": span.end, **fresh}).first()
        if story is None:
            story = _owned(session, user_id, span.id, lock=True)
            if story.status == PENDING:
                return story  # asked again while pending: the same story, at no cost
            for name, value in fresh.items():
                setattr(story, name, value)
        if not _admit(session, user_id=user_id, day=now.date(), limit=daily_limit):
            raise TooManyRequests(OVER_LIMIT, retry_after=seconds_to_midnight(now))
        session.flush()
        uow.publish("stories.generation.requested", {
            "story_id": story.id, "user_id": user_id, "period": story.period,
            "generation_id": story.generation_id})
        uow.commit()
    return story


def _owned(session: Session, user_id: str, period: str, *, lock: bool = False) -> Story:
    return first_or_not_found(session, select(Story).where(
        Story.user_id == user_id, Story.period == period), "No such story", lock=lock)


def get_story(uow: UnitOfWork, *, user_id: str, period: str) -> Story:
    with uow.read_only():
        return _owned(uow.session, user_id, period)


def delete_story(uow: UnitOfWork, *, user_id: str, period: str, clock: Clock = utcnow) -> None:
    """Gone, pending or not (a pending one's job then writes nothing; its slot stays used)."""
    with uow:
        story = _owned(uow.session, user_id, period, lock=True)
        uow.publish("stories.story.deleted", {
            "story_id": story.id, "user_id": user_id, "period": story.period,
            "deleted_at": clock()})
        uow.session.delete(story)
        uow.commit()


_STORIES = Story.__table__.c
_MINE = Keyset(select(Story.__table__).where(
    _STORIES.user_id == bindparam("user_id", type_=String)),
    created=_STORIES.created_at, id_=_STORIES.id)


def list_stories(
    uow: UnitOfWork, *, user_id: str, limit: int = 50, cursor: str | None = None
) -> Page[Any]:
    """Newest first, a keyset page at a time."""
    with uow.read_only():
        return _MINE.page(uow.session, limit=limit, cursor=cursor, params={"user_id": user_id})


# -- the worker's side ------------------------------------------------------------------

def _goal_facts(goal: GoalView) -> GoalFacts:
    return GoalFacts(title=goal.title or "", period=goal.period, status=goal.status,
                     start_date=goal.start_date, deadline=goal.deadline,
                     completed_at=goal.completed_at)


def story_facts(session: Session, *, user_id: str, span: periods.Period) -> StoryRequest:
    """What the user did in `span`, from stories' read models."""
    start, end = span.start, span.end
    profile = session.get(Profile, user_id)
    facts = ProfileFacts(**{name: getattr(profile, name) for name in PROFILE_FIELDS}) \
        if profile else ProfileFacts()
    goals = session.scalars(
        select(GoalView).where(
            GoalView.user_id == user_id, GoalView.title.is_not(None),
            or_(GoalView.completed_at.between(start, end),
                GoalView.start_date.between(start, end),
                (GoalView.status == "ACTIVE") & (GoalView.start_date < end)
                & (GoalView.deadline >= start)))
        .order_by(GoalView.start_date, GoalView.goal_id).limit(3 * MAX_FACTS)).all()
    completed = [g for g in goals if g.completed_at and span.contains(g.completed_at)]
    started = [g for g in goals if g.start_date and span.contains(g.start_date)]
    still_open = [g for g in goals if g.status == "ACTIVE" and g.start_date
                  and g.start_date < end and (g.deadline is None or g.deadline >= start)]
    posts = session.scalars(
        select(PostView).where(PostView.author_id == user_id, PostView.published_at >= start,
                               PostView.published_at < end)
        .order_by(PostView.published_at, PostView.post_id).limit(MAX_FACTS)).all()
    return StoryRequest(
        period=span, profile=facts,
        completed=[_goal_facts(g) for g in completed[:MAX_FACTS]],
        started=[_goal_facts(g) for g in started[:MAX_FACTS]],
        still_open=[_goal_facts(g) for g in still_open[:MAX_FACTS]],
        posts=[PostFacts(title=p.title, published_at=p.published_at) for p in posts])


def _live(session: Session, job: StoryRequested) -> Story | None:
    """The story if it is still waiting for this very job (not deleted, superseded or done)."""
    return session.scalars(select(Story).where(Story.id == job.story_id,
                                               Story.generation_id == job.generation_id,
                                               Story.status == PENDING)).first()


def write_story(uow: UnitOfWork, *, job: StoryRequested, generator: StoryGenerator,
                clock: Clock = utcnow,
                gate: AbstractContextManager[Any] | None = None) -> str | None:
    """Write the story a job asks for: facts read, text generated outside any transaction,
    then READY (and `stories.story.generated`) or FAILED with its slot refunded. Idempotent:
    a redelivered or superseded job writes nothing. Returns the status written, if any.

    The reading and the recording each happen inside `gate` (the worker's bound on how many
    generations use the database at once), the model's call outside it."""
    gate = contextlib.nullcontext() if gate is None else gate
    with gate, uow.read_only():
        story = _live(uow.session, job)
        if story is None:
            return None
        request = story_facts(uow.session, user_id=story.user_id,
                              span=periods.Period(story.period, story.period_kind,
                                                  story.period_start, story.period_end))
    content, error = None, None
    try:
        content = generator.write(request)
    except GenerationFailed as failed:
        error = failed.reason
    except Exception:  # a bug in a generator must not leave the story pending
        log.exception("story generator crashed", extra={"story_id": job.story_id})
        error = BROKEN
    tombstones = uow.db.tombstones.c
    written = {"status": READY, "content": content, "generated_at": clock()} \
        if content is not None else {"status": FAILED, "error": error}
    with gate, uow:
        session = uow.session
        # One statement: only while still pending for this very job, and never for a user
        # deleted meanwhile (the sweeper removes such a story).
        row = session.execute(
            update(Story)
            .where(Story.id == job.story_id, Story.generation_id == job.generation_id,
                   Story.status == PENDING,
                   ~select(tombstones.user_id).where(
                       tombstones.user_id == Story.user_id).exists())
            .values(**written)
            .returning(Story.user_id, Story.period, Story.admitted_on),
            execution_options={"synchronize_session": False}).first()
        if row is None:
            return None  # deleted, asked again or finished while it was being written
        if content is not None:
            uow.publish("stories.story.generated", {
                "story_id": job.story_id, "user_id": row.user_id, "period": row.period,
                "generated_at": written["generated_at"]})
        else:
            _refund(session, user_id=row.user_id, day=row.admitted_on)
        uow.commit()
        return str(written["status"])


def fail_overdue(uow: UnitOfWork, *, older_than: timedelta, clock: Clock = utcnow,
                 batch: int = 100) -> int:
    """Stories still PENDING `older_than` after their request (the job lost, or its worker
    dying on it every time) are FAILED and refunded: nothing stays pending for ever. Stories
    of users deleted meanwhile go."""
    tombstones = uow.db.tombstones.c
    with uow:
        session = uow.session
        session.execute(delete(Story).where(Story.user_id.in_(select(tombstones.user_id))))
        overdue = session.scalars(
            select(Story).where(Story.status == PENDING,
                                Story.requested_at < clock() - older_than)
            .order_by(Story.requested_at).limit(batch).with_for_update(skip_locked=True)).all()
        for story in overdue:
            story.status, story.error = FAILED, TOO_LONG
            _refund(session, user_id=story.user_id, day=story.admitted_on)
        uow.commit()
        return len(overdue)


def forget_user(session: Session, *, user_id: str) -> None:
    """A deleted user's stories, counts and every copy of their data go (the consumer has
    already laid the tombstone, so no late event brings them back)."""
    session.execute(delete(Story).where(Story.user_id == user_id))
    session.execute(delete(GenerationCount).where(GenerationCount.user_id == user_id))
    session.execute(delete(Profile).where(Profile.user_id == user_id))
    session.execute(delete(GoalView).where(GoalView.user_id == user_id))
    session.execute(delete(DeletedGoal).where(DeletedGoal.user_id == user_id))
    session.execute(delete(PostView).where(PostView.author_id == user_id))
    session.execute(delete(WithdrawnPost).where(WithdrawnPost.author_id == user_id))
