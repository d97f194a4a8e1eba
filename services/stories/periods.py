"""Period ids: one UTC calendar span each, half-open [start, end).

    2026-12-01  a day         2026-W49  an ISO week (Monday to Monday; W53 only in years
    2026-12     a month                 whose 28 December falls in week 53)
    2026-Q4     a quarter     2026      a year
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# What the HTTP schema states as the field's pattern; `parse` checks the calendar itself.
PATTERN = (r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?"
           r"|-W(0[1-9]|[1-4][0-9]|5[0-3])|-Q[1-4])?$")
_PATTERN = re.compile(PATTERN)
KINDS = ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR")


class InvalidPeriod(ValueError):
    """Not a period id, or a calendar span that does not exist (2026-02-30, 2026-W53)."""


@dataclass(frozen=True)
class Period:
    id: str
    kind: str  # DAY | WEEK | MONTH | QUARTER | YEAR
    start: datetime  # inclusive, UTC midnight
    end: datetime  # exclusive: the next period's start

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _month_start(year: int, month: int) -> date:
    year += (month - 1) // 12
    return date(year, (month - 1) % 12 + 1, 1)


def parse(period_id: str) -> Period:
    """The span a period id names (not checked against the clock: see `started`)."""
    if not isinstance(period_id, str) or not _PATTERN.fullmatch(period_id):
        raise InvalidPeriod("Not a period: use 2026-12-01, 2026-W49, 2026-12, 2026-Q4 or 2026.")
    try:
        year = int(period_id[:4])
        if year < 1:
            raise ValueError("year 0")
        rest = period_id[5:]
        if not rest:
            kind, first, after = "YEAR", date(year, 1, 1), date(year + 1, 1, 1)
        elif rest.startswith("W"):
            kind, week = "WEEK", int(rest[1:])
            first = date.fromisocalendar(year, week, 1)  # ValueError for a W53 that isn't
            after = first + timedelta(days=7)
        elif rest.startswith("Q"):
            quarter = int(rest[1:])
            kind, first = "QUARTER", date(year, 3 * quarter - 2, 1)
            after = _month_start(year, 3 * quarter + 1)
        elif len(rest) == 2:
            kind, first = "MONTH", date(year, int(rest), 1)
            after = _month_start(year, int(rest) + 1)
        else:
            kind, first = "DAY", date.fromisoformat(period_id)
            after = first + timedelta(days=1)
    except (ValueError, OverflowError) as exc:
        raise InvalidPeriod(f"No such period: {period_id}.") from exc
    return Period(id=period_id, kind=kind, start=_midnight(first), end=_midnight(after))


def started(period_id: str, *, now: datetime) -> Period:
    """`parse`, refusing a period that has not begun by `now` (nothing to tell yet)."""
    period = parse(period_id)
    if period.start > now:
        raise InvalidPeriod(f"{period_id} has not started yet.")
    return period


def next_midnight(now: datetime) -> datetime:
    return _midnight(now.astimezone(UTC).date()) + timedelta(days=1)
