"""What auth does when other services' events arrive: achievement awards and story counts."""

from __future__ import annotations

from services.auth import achievements
from shared.consumer import Handler
from shared.db import UnitOfWork
from shared.events import Event


def on_goal_completed(uow: UnitOfWork, event: Event) -> None:
    data = event.data
    achievements.award_for_goal(uow.session, goal_id=data["goal_id"], user_id=data["user_id"],
                                period=data["period"], version=data["version"])


def on_goal_withdrawn(uow: UnitOfWork, event: Event) -> None:
    data = event.data
    achievements.withdraw_award(uow.session, goal_id=data["goal_id"], user_id=data["user_id"],
                                period=data["period"], version=data["version"])


def on_story_generated(uow: UnitOfWork, event: Event) -> None:
    achievements.count_story_generation(uow.session, user_id=event.data["user_id"],
                                        generated_at=event.data["generated_at"])


HANDLERS: dict[str, Handler] = {
    "goals.goal.completed": on_goal_completed,
    "goals.goal.reopened": on_goal_withdrawn,
    "goals.goal.deleted": on_goal_withdrawn,
    "stories.story.generated": on_story_generated,
}
