"""Period ids: every kind, its UTC bounds (half-open), ISO week 53 and year boundaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.stories.periods import InvalidPeriod, next_midnight, parse, started


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize("period,kind,start,end", [
    ("2026-12-01", "DAY", utc(2026, 12, 1), utc(2026, 12, 2)),
    ("2026-12-31", "DAY", utc(2026, 12, 31), utc(2027, 1, 1)),
    ("2024-02-29", "DAY", utc(2024, 2, 29), utc(2024, 3, 1)),
    ("2026-W49", "WEEK", utc(2026, 11, 30), utc(2026, 12, 7)),
    ("2026-W01", "WEEK", utc(2025, 12, 29), utc(2026, 1, 5)),  # week 1 starts in 2025
    ("2026-W53", "WEEK", utc(2026, 12, 28), utc(2027, 1, 4)),  # 2026 has 53 ISO weeks
    ("2020-W53", "WEEK", utc(2020, 12, 28), utc(2021, 1, 4)),
    ("2026-12", "MONTH", utc(2026, 12, 1), utc(2027, 1, 1)),
    ("2026-02", "MONTH", utc(2026, 2, 1), utc(2026, 3, 1)),
    ("2026-Q1", "QUARTER", utc(2026, 1, 1), utc(2026, 4, 1)),
    ("2026-Q4", "QUARTER", utc(2026, 10, 1), utc(2027, 1, 1)),
    ("2026", "YEAR", utc(2026, 1, 1), utc(2027, 1, 1)),
])
def test_each_kind_of_period_names_its_utc_span(period: str, kind: str, start: datetime,
                                                end: datetime) -> None:
    span = parse(period)
    assert (span.kind, span.start, span.end) == (kind, start, end)
    assert span.contains(start) and not span.contains(end)


@pytest.mark.parametrize("period", [
    "2025-W53",  # 2025 has 52 ISO weeks
    "2027-W53", "2026-W00", "2026-W54", "2026-02-29", "2026-04-31", "2026-13", "2026-00",
    "2026-Q0", "2026-Q5", "0000", "26", "2026-1", "2026-12-1", "2026W49", "2026-w49",
    "2026-q4", " 2026", "2026\n", "", "9999", "9999-12-31", "9999-W52", "9999-Q4",
    "2026-12-01T00:00", "٢٠٢٦",
])
def test_anything_else_is_not_a_period(period: str) -> None:
    with pytest.raises(InvalidPeriod):
        parse(period)


def test_a_period_that_has_not_started_is_refused_but_the_current_one_is_not() -> None:
    now = utc(2026, 12, 1, 11, 30)
    assert started("2026-12-01", now=now).kind == "DAY"
    assert started("2026-W49", now=now).kind == "WEEK"
    assert started("2026", now=now).kind == "YEAR"
    for future in ("2026-12-02", "2026-W50", "2027-01", "2027-Q1", "2027"):
        with pytest.raises(InvalidPeriod, match="not started"):
            started(future, now=now)
    assert started("2026-12-02", now=utc(2026, 12, 2)).kind == "DAY"  # from its first instant


def test_the_next_midnight_is_the_next_utc_day() -> None:
    assert next_midnight(utc(2026, 12, 31, 23, 59, 59)) == utc(2027, 1, 1)
    assert next_midnight(utc(2026, 12, 1)) == utc(2026, 12, 2)
