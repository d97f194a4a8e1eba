"""The stories web process: `gunicorn "services.stories.app:create_app()"`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.stories.api import PeriodConverter, blp
from services.stories.settings import StoriesSettings
from services.stories.usecases import Clock
from shared.config import Settings
from shared.db import utcnow
from shared.http import create_service_app


def create_app(config: dict[str, Any] | None = None, *,
               stories: StoriesSettings | None = None, clock: Clock = utcnow,
               **wiring: Any) -> Flask:
    """Settings are read here, once (views find them in `app.extensions`); tests may pass
    their own settings and clock."""
    app = create_service_app(
        Settings.from_env("stories"),
        title="Stories",
        description="AI-written stories of a user's progress in a period, drawn from "
                    "copies of their profile, goals and posts kept current by events.",
        blueprints=[blp],
        config=config,
        converters={"period": PeriodConverter},
        **wiring,
    )
    app.extensions["stories.settings"] = stories or StoriesSettings.from_env()
    app.extensions["stories.clock"] = clock
    return app
