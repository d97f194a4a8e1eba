from datetime import UTC, datetime

import pytest

from services.goals.models import GoalPeriod
from services.goals.periods import period_end


@pytest.mark.parametrize(
    ("start", "period", "end"),
    [
        ("2026-11-24T10:00:00", GoalPeriod.DAILY, "2026-11-24T23:59:59.999999"),
        ("2026-11-24T10:00:00", GoalPeriod.WEEKLY, "2026-11-29T23:59:59.999999"),  # Tue -> Sun
        ("2026-11-30T00:00:00", GoalPeriod.WEEKLY, "2026-12-06T23:59:59.999999"),  # a Monday
        ("2026-12-31T23:00:00", GoalPeriod.WEEKLY, "2027-01-03T23:59:59.999999"),  # ISO 2026-W53
        ("2026-02-10T00:00:00", GoalPeriod.MONTHLY, "2026-02-28T23:59:59.999999"),
        ("2028-02-10T00:00:00", GoalPeriod.MONTHLY, "2028-02-29T23:59:59.999999"),  # leap year
        ("2026-12-10T00:00:00", GoalPeriod.MONTHLY, "2026-12-31T23:59:59.999999"),
        ("2026-11-24T00:00:00", GoalPeriod.QUARTERLY, "2026-12-31T23:59:59.999999"),
        ("2026-04-01T00:00:00", GoalPeriod.QUARTERLY, "2026-06-30T23:59:59.999999"),
        ("2026-03-31T23:59:59", GoalPeriod.QUARTERLY, "2026-03-31T23:59:59.999999"),
        ("2026-01-01T00:00:00", GoalPeriod.YEARLY, "2026-12-31T23:59:59.999999"),
    ],
)
def test_default_deadline_is_the_end_of_the_period_in_utc(start: str, period: GoalPeriod,
                                                          end: str) -> None:
    begin = datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert period_end(begin, period) == datetime.fromisoformat(end).replace(tzinfo=UTC)


def test_period_end_uses_utc_whatever_the_offset_given() -> None:
    # 01:00 on the 25th at +03:00 is 22:00 on the 24th in UTC.
    start = datetime.fromisoformat("2026-11-25T01:00:00+03:00")
    assert period_end(start, GoalPeriod.DAILY).isoformat() == "2026-11-24T23:59:59.999999+00:00"
