"""What stories does when other services' events arrive: keep its read models current."""

from __future__ import annotations

from services.stories import readmodels
from services.stories.models import GoalView, PostView, Profile
from services.stories.usecases import forget_user
from shared import resync
from shared.consumer import Handlers, batch, each
from shared.db import UnitOfWork
from shared.events import (
    Event,
    GoalCompleted,
    GoalSnapshot,
    GoalWithdrawn,
    PostChanged,
    UserDeleted,
    UserProfile,
)
from shared.revocations import on_sessions_revoked_handler


def on_user_profile(uow: UnitOfWork, event: Event[UserProfile]) -> None:
    readmodels.record_profile(uow.session, profile=event.data, as_of=event.time)


def on_user_deleted(uow: UnitOfWork, event: Event[UserDeleted]) -> None:
    forget_user(uow.session, user_id=event.data.user_id)


def on_goal_snapshot(uow: UnitOfWork, event: Event[GoalSnapshot]) -> None:
    readmodels.record_goal(uow.session, goal=event.data)


def on_goal_completed(uow: UnitOfWork, event: Event[GoalCompleted]) -> None:
    readmodels.record_goal_status(uow.session, change=event.data, status="COMPLETED",
                                  completed_at=event.data.completed_at)


def on_goal_reopened(uow: UnitOfWork, event: Event[GoalWithdrawn]) -> None:
    readmodels.record_goal_status(uow.session, change=event.data, status="ACTIVE",
                                  completed_at=None)


def on_goal_deleted(uow: UnitOfWork, event: Event[GoalWithdrawn]) -> None:
    readmodels.record_goal_deleted(uow.session, goal_id=event.data.goal_id,
                                   user_id=event.data.user_id)


def on_post_published(uow: UnitOfWork, event: Event[PostChanged]) -> None:
    readmodels.record_published_post(uow.session, post=event.data)


def on_post_withdrawn(uow: UnitOfWork, event: Event[PostChanged]) -> None:
    readmodels.forget_post(uow.session, post=event.data)


# A resync's snapshots apply exactly as the live events they stand for (versions, the
# deletion marks, tombstones), and confirm their row even when it held that version already.

def on_profile_snapshot(uow: UnitOfWork, event: Event[UserProfile]) -> None:
    on_user_profile(uow, event)
    resync.confirm(uow.session, Profile, event.data.user_id)


def on_goal_resync(uow: UnitOfWork, events: list[Event[GoalSnapshot]]) -> None:
    """Many at once: a resync sends every goal there is."""
    readmodels.record_goal_snapshots(uow.session, [e.data for e in events])


def on_post_snapshot(uow: UnitOfWork, event: Event[PostChanged]) -> None:
    on_post_published(uow, event)
    resync.confirm(uow.session, PostView, event.data.post_id)


# The fields each handler reads (its contract with the producer).
POST_FIELDS = ("post_id", "author_id", "title", "published_at", "version")
GOAL_STATUS_FIELDS = ("goal_id", "user_id", "period", "version")

HANDLERS: Handlers = {
    "auth.user.registered": each(on_user_profile,
                                 reads=("user_id", *readmodels.PROFILE_FIELDS)),
    "auth.user.updated": each(on_user_profile, reads=("user_id", *readmodels.PROFILE_FIELDS)),
    "auth.user.deleted": each(on_user_deleted, reads=("user_id",)),
    "auth.user.sessions_revoked": on_sessions_revoked_handler,
    "goals.goal.created": each(on_goal_snapshot, reads=readmodels.GOAL_FIELDS),
    "goals.goal.updated": each(on_goal_snapshot, reads=readmodels.GOAL_FIELDS),
    "goals.goal.completed": each(on_goal_completed,
                                 reads=(*GOAL_STATUS_FIELDS, "completed_at")),
    "goals.goal.reopened": each(on_goal_reopened, reads=GOAL_STATUS_FIELDS),
    "goals.goal.deleted": each(on_goal_deleted, reads=("goal_id", "user_id")),
    "diary.post.published": each(on_post_published, reads=POST_FIELDS),
    "diary.post.updated": each(on_post_published, reads=POST_FIELDS),
    "diary.post.unpublished": each(on_post_withdrawn, reads=POST_FIELDS),
    "diary.post.deleted": each(on_post_withdrawn, reads=POST_FIELDS),
    "auth.user.snapshot": each(on_profile_snapshot,
                               reads=("user_id", *readmodels.PROFILE_FIELDS)),
    "goals.goal.snapshot": batch(on_goal_resync, reads=readmodels.GOAL_FIELDS),
    "diary.post.snapshot": each(on_post_snapshot, reads=POST_FIELDS),
    **resync.completing({"auth": resync.sweeper(Profile), "goals": resync.sweeper(GoalView),
                         "diary": resync.sweeper(PostView)}),
}
