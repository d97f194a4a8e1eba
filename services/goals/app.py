"""The goals web process: `gunicorn "services.goals.app:create_app()"`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.goals.api import blp
from shared.config import Settings
from shared.http import create_service_app


def create_app(config: dict[str, Any] | None = None, **wiring: Any) -> Flask:
    return create_service_app(
        Settings.from_env("goals"),
        title="Goals",
        description="Goals from daily to yearly; completing one raises the owner's "
                    "achievement score (through the goals.goal.completed event).",
        blueprints=[blp],
        config=config,
        **wiring,
    )
