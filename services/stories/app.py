"""The stories web process: `gunicorn "services.stories.app:create_app()"`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.stories.api import blp
from shared.config import Settings
from shared.http import create_service_app


def create_app(config: dict[str, Any] | None = None, **wiring: Any) -> Flask:
    return create_service_app(
        Settings.from_env("stories"),
        title="Stories",
        description="AI-written stories of a user's progress in a period, drawn from "
                    "copies of their profile, goals and posts kept current by events.",
        blueprints=[blp],
        config=config,
        **wiring,
    )
