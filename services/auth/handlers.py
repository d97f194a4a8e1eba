"""What auth does when other services' events arrive: achievement awards and story counts."""

from __future__ import annotations

from services.auth import achievements
from shared import resync
from shared.consumer import Handlers, batch, each
from shared.db import UnitOfWork
from shared.events import Event, GoalCompleted, GoalWithdrawn, StoryGenerated


def on_goal_events(uow: UnitOfWork, events: list[Event[GoalCompleted | GoalWithdrawn]]) -> None:
    """Completed awards, reopened or deleted withdraws: a batch of them in two statements."""
    achievements.record_goals(uow.session, [
        achievements.GoalState(
            goal_id=e.data.goal_id, user_id=e.data.user_id, period=e.data.period,
            version=e.data.version, awarded=isinstance(e.data, GoalCompleted))
        for e in events
    ])


def on_story_generated(uow: UnitOfWork, event: Event[StoryGenerated]) -> None:
    achievements.count_story_generation(uow.session, user_id=event.data.user_id,
                                        generated_at=event.data.generated_at)


# The fields each handler reads (its contract with the producer).
GOAL_FIELDS = ("goal_id", "user_id", "period", "version")

HANDLERS: Handlers = {
    "goals.goal.completed": batch(on_goal_events, reads=GOAL_FIELDS),
    "goals.goal.reopened": batch(on_goal_events, reads=GOAL_FIELDS),
    "goals.goal.deleted": batch(on_goal_events, reads=GOAL_FIELDS),
    "stories.story.generated": each(on_story_generated, reads=("user_id", "generated_at")),
    **resync.answering("auth", askers=("stories", "diary")),
}
