"""What the goals service does. Plain functions of a unit of work; no Flask here.

Each use case opens its unit of work and commits it (reads open it read-only); the helpers
below it only flush. Every change bumps the goal's version and records its event in the
same transaction. Only the owner may see or change a goal: anyone else is told it does
not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, bindparam, delete, select
from sqlalchemy.orm import Session

from services.goals.models import Goal, GoalPeriod, GoalStatus
from services.goals.periods import period_end
from shared.db import UnitOfWork, first_or_not_found, utcnow
from shared.errors import Conflict, Invalid
from shared.pagination import Keyset, Page, walk


def snapshot(goal: Goal) -> dict[str, Any]:
    return {
        "goal_id": goal.id, "user_id": goal.user_id, "version": goal.version,
        "title": goal.title, "period": goal.period.value, "status": goal.status.value,
        "start_date": goal.start_date, "deadline": goal.deadline,
        "completed_at": goal.completed_at,
    }


# A resync's answer (shared.resync): every goal, by id, as the created/updated events'
# payload at its current version.
goal_snapshots = walk(select(Goal), Goal.id, snapshot)


def _withdrawn(goal: Goal) -> dict[str, Any]:
    return {"goal_id": goal.id, "user_id": goal.user_id, "version": goal.version,
            "period": goal.period.value}


def _check_dates(start: datetime, deadline: datetime) -> None:
    if deadline < start:
        raise Invalid({"deadline": ["Must not be before startDate."]})


def create_goal(
    uow: UnitOfWork,
    *,
    user_id: str,
    title: str,
    period: GoalPeriod,
    start_date: datetime | None = None,
    deadline: datetime | None = None,
) -> Goal:
    start = (start_date or utcnow()).astimezone(UTC)
    end = deadline.astimezone(UTC) if deadline else period_end(start, period)
    _check_dates(start, end)
    goal = Goal(user_id=user_id, title=title, period=period, status=GoalStatus.ACTIVE,
                start_date=start, deadline=end, version=1)
    with uow:
        uow.session.add(goal)
        uow.session.flush()
        uow.publish("goals.goal.created", snapshot(goal))
        uow.commit()
    return goal


def _owned(session: Session, user_id: str, goal_id: str, *, lock: bool = False) -> Goal:
    return first_or_not_found(
        session, select(Goal).where(Goal.id == goal_id, Goal.user_id == user_id),
        "No such goal", lock=lock)


def get_goal(uow: UnitOfWork, *, user_id: str, goal_id: str) -> Goal:
    with uow.read_only():
        return _owned(uow.session, user_id, goal_id)


_GOALS = Goal.__table__.c
_OWNED_BY = select(Goal.__table__).where(_GOALS.user_id == bindparam("user_id", type_=String))
# A user's list, by the filters given: (status given, period given) -> its statements, built
# once. The (userId, createdAt, id) index serves the unfiltered list; (userId, status) and
# (userId, period) the filtered ones.
_LISTS = {
    (by_status, by_period): Keyset(
        _OWNED_BY.where(*([_GOALS.status == bindparam("status", type_=_GOALS.status.type)]
                          if by_status else []),
                        *([_GOALS.period == bindparam("period", type_=_GOALS.period.type)]
                          if by_period else [])),
        created=_GOALS.created_at, id_=_GOALS.id)
    for by_status in (False, True) for by_period in (False, True)
}


def list_goals(
    uow: UnitOfWork,
    *,
    user_id: str,
    status: GoalStatus | None = None,
    period: GoalPeriod | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Any]:
    """Newest first: rows, not mapped objects (a list is a read)."""
    params: dict[str, Any] = {"user_id": user_id}
    if status is not None:
        params["status"] = status
    if period is not None:
        params["period"] = period
    with uow.read_only():
        return _LISTS[status is not None, period is not None].page(
            uow.session, limit=limit, cursor=cursor, params=params)


_UNSET: Any = object()


def update_goal(
    uow: UnitOfWork,
    *,
    user_id: str,
    goal_id: str,
    title: str = _UNSET,
    period: GoalPeriod = _UNSET,
    start_date: datetime = _UNSET,
    deadline: datetime = _UNSET,
) -> Goal:
    with uow:
        goal = _owned(uow.session, user_id, goal_id, lock=True)
        if period is not _UNSET and period != goal.period and goal.status is GoalStatus.COMPLETED:
            raise Conflict("Reopen the goal before changing its period: its award depends on it")
        changed = False
        if title is not _UNSET and title != goal.title:
            goal.title, changed = title, True
        if start_date is not _UNSET and start_date != goal.start_date:
            goal.start_date, changed = start_date.astimezone(UTC), True
        if period is not _UNSET and period != goal.period:
            goal.period, changed = period, True
        if deadline is not _UNSET:
            if deadline != goal.deadline:
                goal.deadline, changed = deadline.astimezone(UTC), True
        elif changed and (period is not _UNSET or start_date is not _UNSET):
            goal.deadline = period_end(goal.start_date, goal.period)  # keep the default in step
        _check_dates(goal.start_date, goal.deadline)
        if changed:
            goal.version += 1
            uow.session.flush()
            uow.publish("goals.goal.updated", snapshot(goal))
        uow.commit()
    return goal


def complete_goal(uow: UnitOfWork, *, user_id: str, goal_id: str) -> Goal:
    """ACTIVE -> COMPLETED; completing a completed goal changes nothing and awards nothing."""
    with uow:
        goal = _owned(uow.session, user_id, goal_id, lock=True)
        if goal.status is GoalStatus.ACTIVE:
            goal.status, goal.completed_at = GoalStatus.COMPLETED, utcnow()
            goal.version += 1
            uow.session.flush()
            uow.publish("goals.goal.completed", {
                "goal_id": goal.id, "user_id": goal.user_id, "version": goal.version,
                "period": goal.period.value, "completed_at": goal.completed_at,
            })
        uow.commit()
    return goal


def reopen_goal(uow: UnitOfWork, *, user_id: str, goal_id: str) -> Goal:
    """COMPLETED -> ACTIVE; the award for it is withdrawn."""
    with uow:
        goal = _owned(uow.session, user_id, goal_id, lock=True)
        if goal.status is GoalStatus.COMPLETED:
            goal.status, goal.completed_at = GoalStatus.ACTIVE, None
            goal.version += 1
            uow.session.flush()
            uow.publish("goals.goal.reopened", _withdrawn(goal))
        uow.commit()
    return goal


def delete_goal(uow: UnitOfWork, *, user_id: str, goal_id: str) -> None:
    with uow:
        goal = _owned(uow.session, user_id, goal_id, lock=True)
        goal.version += 1
        uow.publish("goals.goal.deleted", _withdrawn(goal))
        uow.session.delete(goal)
        uow.commit()


def forget_user(session: Session, *, user_id: str) -> int:
    """Every goal of a deleted user goes (the consumer has already laid the tombstone)."""
    result = session.execute(delete(Goal).where(Goal.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)
