"""The diary web process: `gunicorn "services.diary.app:create_app()"`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.diary.api import blp
from shared.config import Settings
from shared.http import create_service_app


def create_app(config: dict[str, Any] | None = None, **wiring: Any) -> Flask:
    return create_service_app(
        Settings.from_env("diary"),
        title="Diary",
        description="Growth diary posts that others can like and reply to, a feed of "
                    "everyone's published posts; publishing, editing, unpublishing and "
                    "deleting a post raise diary.post.* events.",
        blueprints=[blp],
        config=config,
        **wiring,
    )
