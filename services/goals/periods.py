"""Where a period ends: the default deadline of a goal (UTC, last microsecond of the period)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.goals.models import GoalPeriod


def period_end(start: datetime, period: GoalPeriod) -> datetime:
    start = start.astimezone(UTC)
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is GoalPeriod.DAILY:
        next_start = day + timedelta(days=1)
    elif period is GoalPeriod.WEEKLY:  # ISO weeks start on Monday
        next_start = day + timedelta(days=7 - day.weekday())
    elif period is GoalPeriod.MONTHLY:
        next_start = _month_start(day.year, day.month + 1)
    elif period is GoalPeriod.QUARTERLY:
        next_start = _month_start(day.year, (day.month - 1) // 3 * 3 + 4)
    else:
        next_start = _month_start(day.year + 1, 1)
    return next_start - timedelta(microseconds=1)


def _month_start(year: int, month: int) -> datetime:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)
