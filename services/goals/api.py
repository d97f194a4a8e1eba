"""Goals routes: translate HTTP to a use case and back."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from services.goals import usecases
from services.goals.models import Goal
from services.goals.schemas import (
    GoalCreateSchema,
    GoalPageSchema,
    GoalQuerySchema,
    GoalSchema,
    GoalUpdateSchema,
)
from shared.http import Blueprint, authenticated, current_user_id, unit_of_work
from shared.pagination import Page

blp = Blueprint("goals", __name__, url_prefix="/goals",
                description="A user's goals, from daily to yearly")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


@blp.route("", strict_slashes=False)
class Goals(MethodView):
    decorators = [authenticated]

    @blp.arguments(GoalQuerySchema, location="query")
    @blp.response(200, GoalPageSchema)
    @blp.doc(security=SECURITY)
    def get(self, query: dict[str, Any]) -> Page[Any]:
        """List my goals, newest first, optionally by status and period"""
        return usecases.list_goals(unit_of_work(), user_id=current_user_id(), **query)

    @blp.arguments(GoalCreateSchema)
    @blp.response(201, GoalSchema)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> Goal:
        """Create a goal"""
        return usecases.create_goal(unit_of_work(), user_id=current_user_id(), **body)


@blp.route("/<goal_id>")
class GoalById(MethodView):
    decorators = [authenticated]

    @blp.response(200, GoalSchema)
    @blp.doc(security=SECURITY)
    def get(self, goal_id: str) -> Goal:
        """Read one of my goals"""
        return usecases.get_goal(unit_of_work(), user_id=current_user_id(), goal_id=goal_id)

    @blp.arguments(GoalUpdateSchema)
    @blp.response(200, GoalSchema)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], goal_id: str) -> Goal:
        """Change a goal's title, period or dates"""
        return usecases.update_goal(unit_of_work(), user_id=current_user_id(), goal_id=goal_id,
                                    **body)

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, goal_id: str) -> None:
        """Delete a goal (its award, if any, is withdrawn)"""
        usecases.delete_goal(unit_of_work(), user_id=current_user_id(), goal_id=goal_id)


@blp.route("/<goal_id>/complete", methods=["POST"])
@blp.response(200, GoalSchema)
@blp.doc(security=SECURITY)
@authenticated
def complete(goal_id: str) -> Goal:
    """Mark a goal completed (idempotent); the owner's achievement score rises once"""
    return usecases.complete_goal(unit_of_work(), user_id=current_user_id(), goal_id=goal_id)


@blp.route("/<goal_id>/reopen", methods=["POST"])
@blp.response(200, GoalSchema)
@blp.doc(security=SECURITY)
@authenticated
def reopen(goal_id: str) -> Goal:
    """Reopen a completed goal (idempotent); its award is withdrawn"""
    return usecases.reopen_goal(unit_of_work(), user_id=current_user_id(), goal_id=goal_id)
