"""What auth does when other services' events arrive: achievement awards and story counts."""

from __future__ import annotations

from services.auth import achievements
from shared.consumer import Handler, batched
from shared.db import UnitOfWork
from shared.events import Event


@batched
def on_goal_events(uow: UnitOfWork, events: list[Event]) -> None:
    """Completed awards, reopened or deleted withdraws: a batch of them in two statements."""
    achievements.record_goals(uow.session, [
        achievements.GoalState(
            goal_id=e.data["goal_id"], user_id=e.data["user_id"], period=e.data["period"],
            version=e.data["version"], awarded=e.type == "goals.goal.completed")
        for e in events
    ])


def on_story_generated(uow: UnitOfWork, event: Event) -> None:
    achievements.count_story_generation(uow.session, user_id=event.data["user_id"],
                                        generated_at=event.data["generated_at"])


HANDLERS: dict[str, Handler] = {
    "goals.goal.completed": on_goal_events,
    "goals.goal.reopened": on_goal_events,
    "goals.goal.deleted": on_goal_events,
    "stories.story.generated": on_story_generated,
}
