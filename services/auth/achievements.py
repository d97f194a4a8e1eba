"""The counters other services' events move: the achievement score and story generations.

Events may arrive twice (the consumer's inbox absorbs that) and out of order (nothing
absorbs that but these rules): each goal's ledger row remembers the goal version it
reflects and only a newer version changes it; the score is re-summed from the ledger, so it
is exact whatever the order. Events about users this service does not know change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.auth.models import AchievementAward, User

# Points for a completed goal, by its period: roughly the effort the period stands for
# (a year of work outweighs a day's), so the score rewards sustained goals.
POINTS_BY_PERIOD = {"DAILY": 1, "WEEKLY": 5, "MONTHLY": 20, "QUARTERLY": 50, "YEARLY": 100}


def _lock_user(session: Session, user_id: str) -> User | None:
    """Lock the user row: concurrent workers re-summing one user's score take turns."""
    query = select(User).where(User.id == user_id).with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).first()


@dataclass(frozen=True)
class GoalState:
    """A goal's award as of one of its versions: awarded (completed) or not."""

    goal_id: str
    user_id: str
    period: str
    version: int
    awarded: bool


def record_goals(session: Session, states: list[GoalState]) -> set[str]:
    """Apply goal states, newest version per goal winning, in two statements whatever
    their number; returns the users whose score changed."""
    latest: dict[str, GoalState] = {}
    for state in states:
        if state.goal_id not in latest or state.version > latest[state.goal_id].version:
            latest[state.goal_id] = state
    users = sorted({state.user_id for state in latest.values()})
    # Lock in id order (no deadlock between workers); unknown or deleted users drop out.
    known = set(session.scalars(
        select(User.id).where(User.id.in_(users)).order_by(User.id).with_for_update()))
    rows = [{"goal_id": s.goal_id, "user_id": s.user_id, "period": s.period,
             "version": s.version, "points": POINTS_BY_PERIOD[s.period], "awarded": s.awarded}
            for s in latest.values() if s.user_id in known]
    if not rows:
        return set()
    statement = insert(AchievementAward).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[AchievementAward.goal_id],
        set_={"period": statement.excluded.period, "points": statement.excluded.points,
              "version": statement.excluded.version, "awarded": statement.excluded.awarded,
              "updated_at": func.now()},
        where=AchievementAward.version < statement.excluded.version,
    )
    changed = set(session.scalars(statement.returning(AchievementAward.user_id)))
    if changed:
        _resum_scores(session, changed)
    return changed


def record_goal(
    session: Session, *, goal_id: str, user_id: str, period: str, version: int, awarded: bool
) -> bool:
    """Set the goal's award as of `version` unless a newer version is recorded; True if set."""
    return bool(record_goals(session, [GoalState(goal_id, user_id, period, version, awarded)]))


def award_for_goal(
    session: Session, *, goal_id: str, user_id: str, period: str, version: int
) -> bool:
    return record_goal(session, goal_id=goal_id, user_id=user_id, period=period,
                       version=version, awarded=True)


def withdraw_award(
    session: Session, *, goal_id: str, user_id: str, period: str, version: int
) -> bool:
    """Reopened or deleted; recorded even with no award yet, so a late completion is ignored."""
    return record_goal(session, goal_id=goal_id, user_id=user_id, period=period,
                       version=version, awarded=False)


def _resum_scores(session: Session, user_ids: set[str]) -> None:
    """The score is derived, never incremented: exact whatever order events came in."""
    total = (
        select(func.coalesce(func.sum(AchievementAward.points), 0))
        .where(AchievementAward.user_id == User.id, AchievementAward.awarded.is_(True))
        .scalar_subquery()
    )
    session.execute(
        update(User).where(User.id.in_(user_ids)).values(achievement_score=total),
        execution_options={"synchronize_session": False},
    )


def count_story_generation(session: Session, *, user_id: str, generated_at: datetime) -> None:
    """dailyGenerationCount counts the stories of lastGenerationDate's UTC day.

    A story of a later day starts the count again; one of the same day adds to it, even if
    it arrives late; one of an earlier day changes nothing (that day's count is over).
    """
    user = _lock_user(session, user_id)
    if user is None:
        return
    at = generated_at.astimezone(UTC)
    last = user.last_generation_date.astimezone(UTC) if user.last_generation_date else None
    if last is None or at.date() > last.date():
        user.daily_generation_count, user.last_generation_date = 1, at
    elif at.date() == last.date():
        user.daily_generation_count += 1
        user.last_generation_date = max(last, at)
