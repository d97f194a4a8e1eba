"""The goals HTTP contract, in-process against the real database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from tests.helpers import new_user_id

Client = Callable[[str], Any]


@pytest.fixture
def owner(auth_header: Callable[[str], dict[str, str]]) -> tuple[str, dict[str, str]]:
    user_id = new_user_id()
    return user_id, auth_header(user_id)


def create(client: Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client("goals").post("/goals", json={"title": "Ship it", "period": "WEEKLY",
                                                    **body}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def outbox_types(dbs: Any, goal_id: str) -> list[str]:
    db = dbs("goals")
    with db.engine.connect() as conn:
        rows = conn.execute(select(db.outbox.c.type, db.outbox.c.payload)
                            .order_by(db.outbox.c.seq)).all()
    return [r.type for r in rows if r.payload["data"]["goal_id"] == goal_id]


def test_creating_a_goal_fills_defaults_and_records_the_event(client: Client, owner: Any,
                                                              dbs: Any) -> None:
    user_id, headers = owner
    goal = create(client, headers, startDate="2026-11-24T09:30:00Z")
    assert goal["userId"] == user_id
    assert goal["status"] == "ACTIVE"
    assert goal["completedAt"] is None
    assert goal["deadline"] == "2026-11-29T23:59:59.999999+00:00"
    assert outbox_types(dbs, goal["id"]) == ["goals.goal.created"]


def test_a_given_deadline_before_the_start_is_a_field_error(client: Client, owner: Any) -> None:
    _, headers = owner
    response = client("goals").post("/goals", json={
        "title": "x", "period": "DAILY", "startDate": "2026-11-24T00:00:00Z",
        "deadline": "2026-11-23T00:00:00Z"}, headers=headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "deadline" in response.json["errors"]


def test_bad_input_is_reported_field_by_field(client: Client, owner: Any) -> None:
    _, headers = owner
    response = client("goals").post("/goals", json={"title": "", "period": "HOURLY",
                                                    "startDate": "yesterday"}, headers=headers)
    assert response.status_code == 422
    body = response.json
    assert body["status"] == 422 and body["type"] == "about:blank"
    assert set(body["errors"]) == {"title", "period", "startDate"}


def test_malformed_json_and_wrong_media_type_are_problems_not_500s(client: Client,
                                                                   owner: Any) -> None:
    _, headers = owner
    bad_json = client("goals").post("/goals", data="{nope", headers={
        **headers, "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.mimetype == "application/problem+json"
    wrong_type = client("goals").post("/goals", data="title=x", headers={
        **headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert wrong_type.status_code == 415
    too_big = client("goals").post("/goals", data="x" * (1024 * 1024 + 1), headers={
        **headers, "Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.mimetype == "application/problem+json"
    not_allowed = client("goals").put("/goals", headers=headers)
    assert not_allowed.status_code == 405 and not_allowed.mimetype == "application/problem+json"


def test_requests_carry_a_request_id(client: Client, owner: Any) -> None:
    _, headers = owner
    mine = client("goals").get("/goals", headers={**headers, "X-Request-ID": "req-123"})
    assert mine.headers["X-Request-ID"] == "req-123"
    fresh = client("goals").get("/goals/none", headers=headers)
    assert fresh.headers["X-Request-ID"] == fresh.json["requestId"]


def test_without_a_valid_token_nothing_is_shown(client: Client, make_token: Any) -> None:
    assert client("goals").get("/goals").status_code == 401
    expired = make_token(new_user_id(), ttl=-60)
    response = client("goals").get("/goals", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_only_the_owner_sees_or_changes_a_goal(client: Client, owner: Any,
                                               auth_header: Any) -> None:
    _, headers = owner
    goal = create(client, headers)
    stranger = auth_header(new_user_id())
    goals = client("goals")
    assert goals.get(f"/goals/{goal['id']}", headers=stranger).status_code == 404
    assert goals.patch(f"/goals/{goal['id']}", json={"title": "mine"},
                       headers=stranger).status_code == 404
    assert goals.post(f"/goals/{goal['id']}/complete", headers=stranger).status_code == 404
    assert goals.delete(f"/goals/{goal['id']}", headers=stranger).status_code == 404
    assert goals.get("/goals", headers=stranger).json["items"] == []
    assert goals.get(f"/goals/{goal['id']}", headers=headers).json["title"] == "Ship it"


def test_listing_filters_by_status_and_period_and_pages(client: Client, owner: Any) -> None:
    _, headers = owner
    goals = client("goals")
    daily = [create(client, headers, period="DAILY", title=f"d{i}") for i in range(3)]
    create(client, headers, period="YEARLY")
    goals.post(f"/goals/{daily[0]['id']}/complete", headers=headers)

    active_daily = goals.get("/goals?status=ACTIVE&period=DAILY", headers=headers).json
    assert [g["title"] for g in active_daily["items"]] == ["d2", "d1"]
    completed = goals.get("/goals?status=COMPLETED", headers=headers).json["items"]
    assert [g["id"] for g in completed] == [daily[0]["id"]]

    first = goals.get("/goals?limit=3", headers=headers).json
    assert len(first["items"]) == 3 and first["nextCursor"]
    rest = goals.get(f"/goals?limit=3&cursor={first['nextCursor']}", headers=headers).json
    assert len(rest["items"]) == 1 and rest["nextCursor"] is None
    assert goals.get("/goals?status=DONE", headers=headers).status_code == 422
    assert goals.get("/goals?cursor=garbage!", headers=headers).status_code == 422


def test_complete_and_reopen_move_status_and_completed_at(client: Client, owner: Any,
                                                          dbs: Any) -> None:
    _, headers = owner
    goals = client("goals")
    goal = create(client, headers)
    done = goals.post(f"/goals/{goal['id']}/complete", headers=headers).json
    assert done["status"] == "COMPLETED" and done["completedAt"]
    again = goals.post(f"/goals/{goal['id']}/complete", headers=headers).json
    assert again["completedAt"] == done["completedAt"]
    reopened = goals.post(f"/goals/{goal['id']}/reopen", headers=headers).json
    assert reopened["status"] == "ACTIVE" and reopened["completedAt"] is None
    assert outbox_types(dbs, goal["id"]) == [
        "goals.goal.created", "goals.goal.completed", "goals.goal.reopened"]


def test_updating_the_period_moves_a_default_deadline(client: Client, owner: Any) -> None:
    _, headers = owner
    goals = client("goals")
    goal = create(client, headers, startDate="2026-11-24T09:30:00Z", period="DAILY")
    changed = goals.patch(f"/goals/{goal['id']}", json={"period": "MONTHLY"},
                          headers=headers).json
    assert changed["deadline"] == "2026-11-30T23:59:59.999999+00:00"
    renamed = goals.patch(f"/goals/{goal['id']}", json={"title": "Renamed"},
                          headers=headers).json
    assert renamed["title"] == "Renamed" and renamed["deadline"] == changed["deadline"]


def test_a_completed_goal_keeps_its_period_until_reopened(client: Client, owner: Any) -> None:
    _, headers = owner
    goals = client("goals")
    goal = create(client, headers)
    goals.post(f"/goals/{goal['id']}/complete", headers=headers)
    response = goals.patch(f"/goals/{goal['id']}", json={"period": "YEARLY"}, headers=headers)
    assert response.status_code == 409


def test_deleting_a_goal_withdraws_it(client: Client, owner: Any, dbs: Any) -> None:
    _, headers = owner
    goals = client("goals")
    goal = create(client, headers)
    assert goals.delete(f"/goals/{goal['id']}", headers=headers).status_code == 204
    assert goals.get(f"/goals/{goal['id']}", headers=headers).status_code == 404
    assert outbox_types(dbs, goal["id"])[-1] == "goals.goal.deleted"


def test_the_service_documents_itself(client: Client) -> None:
    spec = client("goals").get("/goals/openapi.json").json
    assert "/goals/{goal_id}/complete" in spec["paths"]
    assert client("goals").get("/goals/docs").status_code == 200
    assert client("goals").get("/goals/healthz").json["status"] == "ok"
    ready = client("goals").get("/goals/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"database": "ok",
                                                                 "broker": "ok"}
