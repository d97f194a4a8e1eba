"""Helpers of the stories tests: stories written straight into the table."""

from __future__ import annotations

from typing import Any

from services.stories import periods
from services.stories.models import Story


def ready_story(user_id: str, period: str, content: str = "A good week.", **fields: Any) -> Story:
    span = periods.parse(period)
    return Story(user_id=user_id, period=period, period_kind=span.kind,
                 period_start=span.start, period_end=span.end, status="READY",
                 content=content, **fields)
