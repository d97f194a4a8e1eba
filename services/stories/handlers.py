"""What stories does when other services' events arrive: keep its read models current."""

from __future__ import annotations

from services.stories import readmodels
from services.stories.usecases import forget_user
from shared.consumer import Handler
from shared.db import UnitOfWork
from shared.events import Event


def on_user_profile(uow: UnitOfWork, event: Event) -> None:
    readmodels.record_profile(uow.session, profile=event.data, as_of=event.time)


def on_user_deleted(uow: UnitOfWork, event: Event) -> None:
    forget_user(uow.session, user_id=event.data["user_id"])


def on_goal_snapshot(uow: UnitOfWork, event: Event) -> None:
    readmodels.record_goal(uow.session, goal=event.data)


def on_goal_completed(uow: UnitOfWork, event: Event) -> None:
    readmodels.record_goal_status(uow.session, change=event.data, status="COMPLETED",
                                  completed_at=event.data["completed_at"])


def on_goal_reopened(uow: UnitOfWork, event: Event) -> None:
    readmodels.record_goal_status(uow.session, change=event.data, status="ACTIVE",
                                  completed_at=None)


def on_goal_deleted(uow: UnitOfWork, event: Event) -> None:
    readmodels.record_goal_deleted(uow.session, goal_id=event.data["goal_id"],
                                   user_id=event.data["user_id"])


def on_post_published(uow: UnitOfWork, event: Event) -> None:
    readmodels.record_published_post(uow.session, post=event.data)


def on_post_withdrawn(uow: UnitOfWork, event: Event) -> None:
    readmodels.forget_post(uow.session, post=event.data)


HANDLERS: dict[str, Handler] = {
    "auth.user.registered": on_user_profile,
    "auth.user.updated": on_user_profile,
    "auth.user.deleted": on_user_deleted,
    "goals.goal.created": on_goal_snapshot,
    "goals.goal.updated": on_goal_snapshot,
    "goals.goal.completed": on_goal_completed,
    "goals.goal.reopened": on_goal_reopened,
    "goals.goal.deleted": on_goal_deleted,
    "diary.post.published": on_post_published,
    "diary.post.unpublished": on_post_withdrawn,
    "diary.post.deleted": on_post_withdrawn,
}
