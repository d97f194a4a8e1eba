"""The counters other services' events move: the achievement score and story generations.

Events may arrive twice (the consumer's inbox absorbs that) and out of order (nothing
absorbs that but these rules): each goal's ledger row remembers the goal version it
reflects and only a newer version changes it; a trigger on the ledger moves the score by
exactly what each row change adds or withdraws, so it always equals the sum of the awarded
rows. Events about users this service does not know change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.auth.models import User

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


# One statement for a whole batch: rows for unknown (or deleted) users drop out in the
# join, a row only replaces an older version of its goal, and the table's trigger moves
# each user's score by exactly what the row adds or withdraws. Rows go in user order, so
# two workers lock users in the same order and cannot deadlock.
_RECORD_GOALS = text("""
    INSERT INTO auth.achievement_awards
        (goal_id, user_id, period, points, version, awarded, updated_at)
    SELECT g.goal_id, g.user_id, g.period, g.points, g.version, g.awarded, now()
    FROM unnest(CAST(:goal_ids AS varchar[]), CAST(:user_ids AS varchar[]),
                CAST(:periods AS auth.goal_period[]), CAST(:points AS integer[]),
                CAST(:versions AS integer[]), CAST(:awarded AS boolean[]))
         AS g(goal_id, user_id, period, points, version, awarded)
    JOIN auth.users u ON u.id = g.user_id
    ORDER BY g.user_id, g.goal_id
    ON CONFLICT (goal_id) DO UPDATE SET
        period = EXCLUDED.period, points = EXCLUDED.points, version = EXCLUDED.version,
        awarded = EXCLUDED.awarded, updated_at = now()
    WHERE achievement_awards.version < EXCLUDED.version
    RETURNING user_id""")


def record_goals(session: Session, states: list[GoalState]) -> set[str]:
    """Apply goal states, the newest version per goal winning; returns the users whose
    ledger changed."""
    latest: dict[str, GoalState] = {}
    for state in states:
        if state.goal_id not in latest or state.version > latest[state.goal_id].version:
            latest[state.goal_id] = state
    rows = list(latest.values())
    if not rows:
        return set()
    return set(session.scalars(_RECORD_GOALS, {
        "goal_ids": [r.goal_id for r in rows],
        "user_ids": [r.user_id for r in rows],
        "periods": [r.period for r in rows],
        "points": [POINTS_BY_PERIOD[r.period] for r in rows],
        "versions": [r.version for r in rows],
        "awarded": [r.awarded for r in rows],
    }))


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
