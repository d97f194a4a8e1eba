"""Stories' copies of other services' data, kept up to date from their events.

Events can arrive out of order (a retried message, competing consumers), so each update
says when it applies: a profile only if not older than the one held, a goal only if its
version is newer, and never again once the goal has been deleted; a post only if its
version is newer than the one held or than the one that withdrew it.

Those rules read one row and write another (a goal's view and its deletion mark; a post's
view and its withdrawal), so two workers applying two events of one goal or post at once
could each act on what the other has not committed yet. Each update therefore first takes a
transaction-scoped advisory lock on that goal or post: events of one entity apply one after
the other, whatever worker holds them, and the later version wins.

Each write also marks the row confirmed (`synced_at`): a resync removes, at its end, the
rows of a producer that neither its snapshots nor its live events confirmed since the
resync was asked (shared.resync).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.stories.models import DeletedGoal, GoalView, PostView, Profile, WithdrawnPost
from shared.events import GoalCompleted, GoalSnapshot, GoalWithdrawn, PostChanged, UserProfile

GOAL_FIELDS = ("goal_id", "user_id", "title", "period", "status", "start_date", "deadline",
               "completed_at", "version")
PROFILE_FIELDS = ("name", "current_role", "experience_level", "industry",
                  "years_of_experience", "current_skills", "target_skills", "bio",
                  "current_goals")


def record_profile(session: Session, *, profile: UserProfile, as_of: datetime) -> None:
    row = {"user_id": profile.user_id, "updated_at": as_of, "synced_at": func.now(),
           **{name: getattr(profile, name) for name in PROFILE_FIELDS}}
    for name in ("current_skills", "target_skills", "current_goals"):
        row[name] = row[name] or []
    stmt = insert(Profile).values(row)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Profile.user_id],
        set_={name: stmt.excluded[name]
              for name in (*PROFILE_FIELDS, "updated_at", "synced_at")},
        where=Profile.updated_at <= stmt.excluded.updated_at,
    ))


_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def _lock_key(kind: str, entity_id: str) -> str:
    return f"stories.{kind}:{entity_id}"


def _serialize(session: Session, kind: str, entity_id: str) -> None:
    """Hold this goal's or post's lock until the transaction ends."""
    session.execute(_LOCK, {"key": _lock_key(kind, entity_id)})


def _was_deleted(session: Session, goal_id: str) -> bool:
    return session.get(DeletedGoal, goal_id) is not None


def _upsert_goal(session: Session, row: dict[str, Any]) -> None:
    """Insert, or overwrite the given columns if this version is newer than the one held
    (which confirms the row: `synced_at`, shared.resync)."""
    row = {**row, "synced_at": func.now()}
    stmt = insert(GoalView).values(row)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[GoalView.goal_id],
        set_={name: stmt.excluded[name] for name in row if name != "goal_id"},
        where=GoalView.version < stmt.excluded.version,
    ))


def record_goal(session: Session, *, goal: GoalSnapshot) -> None:
    """A created/updated snapshot: the whole goal at its version."""
    _serialize(session, "goal", goal.goal_id)
    if _was_deleted(session, goal.goal_id):
        return
    _upsert_goal(session, {name: getattr(goal, name) for name in GOAL_FIELDS})
    # A status event that overtook this snapshot left title and dates unknown: fill them.
    session.execute(
        update(GoalView)
        .where(GoalView.goal_id == goal.goal_id, GoalView.title.is_(None))
        .values(title=goal.title, start_date=goal.start_date, deadline=goal.deadline)
    )


_LOCKS = text("""
    SELECT pg_advisory_xact_lock(hashtextextended(k, 0))
    FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS sorted""")
_NEWER = "g.version < excluded.version"
_RECORD_GOAL_SNAPSHOTS = text(f"""
    INSERT INTO goal_views AS g (goal_id, user_id, title, period, status, start_date,
                                 deadline, completed_at, version, synced_at)
    SELECT v.*, now()
    FROM unnest(CAST(:ids AS varchar[]), CAST(:users AS varchar[]), CAST(:titles AS text[]),
                CAST(:periods AS varchar[]), CAST(:statuses AS varchar[]),
                CAST(:starts AS timestamptz[]), CAST(:deadlines AS timestamptz[]),
                CAST(:completed AS timestamptz[]), CAST(:versions AS integer[]))
         AS v(goal_id, user_id, title, period, status, start_date, deadline, completed_at,
              version)
    WHERE NOT EXISTS (SELECT 1 FROM deleted_goals d WHERE d.goal_id = v.goal_id)
    ON CONFLICT (goal_id) DO UPDATE SET
        user_id = CASE WHEN {_NEWER} THEN excluded.user_id ELSE g.user_id END,
        period = CASE WHEN {_NEWER} THEN excluded.period ELSE g.period END,
        status = CASE WHEN {_NEWER} THEN excluded.status ELSE g.status END,
        completed_at = CASE WHEN {_NEWER} THEN excluded.completed_at ELSE g.completed_at END,
        title = CASE WHEN {_NEWER} THEN excluded.title ELSE coalesce(g.title, excluded.title)
                END,
        start_date = CASE WHEN {_NEWER} THEN excluded.start_date
                     ELSE coalesce(g.start_date, excluded.start_date) END,
        deadline = CASE WHEN {_NEWER} THEN excluded.deadline
                   ELSE coalesce(g.deadline, excluded.deadline) END,
        version = greatest(g.version, excluded.version),
        synced_at = excluded.synced_at""")


def record_goal_snapshots(session: Session, goals: Sequence[GoalSnapshot]) -> None:
    """A resync's goals (shared.resync), a delivered batch at once: what `record_goal` does
    for each, in two statements for the batch, the same whatever its size (plain SQL over
    arrays: nothing to compile per batch). First the goals' locks, taken in one order;
    then one upsert that skips the goals marked deleted, takes a newer version whole, fills
    in what a status event that overtook the goal's snapshot left unknown, and confirms
    every row (`synced_at`), newer or not."""
    latest: dict[str, GoalSnapshot] = {}
    for goal in goals:
        held = latest.get(goal.goal_id)
        if held is None or held.version < goal.version:
            latest[goal.goal_id] = goal
    session.execute(_LOCKS, {"keys": [_lock_key("goal", goal_id) for goal_id in latest]})
    page = list(latest.values())
    session.execute(_RECORD_GOAL_SNAPSHOTS, {
        "ids": [g.goal_id for g in page], "users": [g.user_id for g in page],
        "titles": [g.title for g in page], "periods": [g.period for g in page],
        "statuses": [g.status for g in page], "starts": [g.start_date for g in page],
        "deadlines": [g.deadline for g in page],
        "completed": [g.completed_at for g in page],
        "versions": [g.version for g in page]})


def record_goal_status(session: Session, *, change: GoalCompleted | GoalWithdrawn,
                       status: str, completed_at: datetime | None) -> None:
    """Completed or reopened: only status and completion time move."""
    _serialize(session, "goal", change.goal_id)
    if _was_deleted(session, change.goal_id):
        return
    _upsert_goal(session, {
        "goal_id": change.goal_id, "user_id": change.user_id, "period": change.period,
        "status": status, "completed_at": completed_at, "version": change.version})


def record_goal_deleted(session: Session, *, goal_id: str, user_id: str) -> None:
    _serialize(session, "goal", goal_id)
    session.execute(insert(DeletedGoal).values(goal_id=goal_id, user_id=user_id)
                    .on_conflict_do_nothing())
    session.execute(delete(GoalView).where(GoalView.goal_id == goal_id))


def _newer(version: int | None, held: int | None) -> bool:
    """Whether an event's post version is newer than the one held. Events from before
    diary sent versions carry none: those are older than any versioned one, and among
    themselves the last delivered wins."""
    if version is None:
        return held is None
    return held is None or held < version


def _older(held: Any, version: int | None) -> ColumnElement[bool]:
    """`_newer` as SQL, for a held version column."""
    if version is None:
        return held.is_(None)  # type: ignore[no-any-return]
    return or_(held.is_(None), held < version)


def record_published_post(session: Session, *, post: PostChanged) -> None:
    """Published, or a published post's title changed."""
    _serialize(session, "post", post.post_id)
    version = post.version
    withdrawn = session.execute(select(WithdrawnPost.version)
                                .where(WithdrawnPost.post_id == post.post_id)).first()
    if withdrawn is not None:
        if not _newer(version, withdrawn.version):
            return
        session.execute(delete(WithdrawnPost).where(WithdrawnPost.post_id == post.post_id))
    row = {"post_id": post.post_id, "author_id": post.author_id, "title": post.title,
           "published_at": post.published_at, "version": version, "synced_at": func.now()}
    stmt = insert(PostView).values(row)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[PostView.post_id],
        set_={name: stmt.excluded[name]
              for name in ("author_id", "title", "published_at", "version", "synced_at")},
        where=_older(PostView.version, version),
    ))


def forget_post(session: Session, *, post: PostChanged) -> None:
    """Unpublished or deleted: no longer something a story may draw on. The version that
    withdrew it is remembered, so an older publish delivered late does not bring it back."""
    _serialize(session, "post", post.post_id)
    version = post.version
    view = session.execute(select(PostView.version)
                           .where(PostView.post_id == post.post_id)).first()
    if view is not None and not _newer(version, view.version):
        return  # published again since: this withdrawal is stale
    stmt = insert(WithdrawnPost).values(post_id=post.post_id, author_id=post.author_id,
                                        version=version)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[WithdrawnPost.post_id],
        set_={"version": stmt.excluded.version, "withdrawn_at": func.now()},
        where=_older(WithdrawnPost.version, version),
    ))
    session.execute(delete(PostView).where(PostView.post_id == post.post_id,
                                           _older(PostView.version, version)))
