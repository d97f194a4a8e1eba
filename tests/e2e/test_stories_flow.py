"""A member's story through the real nginx gateway: goals and a post reach stories by
events, the story is asked for, written by the stories worker, read, counted by auth, and
deleted; nobody else sees it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.stories.models import GoalView, PostView
from shared.ids import new_id
from tests.e2e.test_gateway import System, call, smtp, system  # noqa: F401 - fixtures
from tests.helpers import wait_for

PASSWORD = "correct horse battery staple"


def member(gateway: System, name: str) -> str:
    email = f"{new_id()}@example.com"
    assert call(gateway, "POST", "/auth/register",
                json={"email": email, "password": PASSWORD, "name": name}).status_code == 201
    login = call(gateway, "POST", "/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return str(login.json()["accessToken"])


def test_a_member_gets_the_story_of_their_day(system: System, dbs: Any) -> None:  # noqa: F811
    token, stranger = member(system, "Grace"), member(system, "Eve")
    goal = call(system, "POST", "/goals", token, json={"title": "Give the demo",
                                                       "period": "DAILY"}).json()
    assert call(system, "POST", f"/goals/{goal['id']}/complete", token).status_code == 200
    call(system, "POST", "/goals", token, json={"title": "Write the retro", "period": "WEEKLY"})
    post = call(system, "POST", "/diary/posts", token, json={
        "title": "Demo day", "content": "It went well", "status": "PUBLISHED"})
    assert post.status_code == 201, post.text
    today = datetime.now(UTC).date().isoformat()
    retro = call(system, "GET", "/goals?period=WEEKLY", token).json()["items"][0]["id"]

    def arrived() -> bool:
        """The goals and the post have reached stories' read models (by events)."""
        with dbs("stories").sessions() as session:
            done = session.get(GoalView, goal["id"])
            return bool(done and done.status == "COMPLETED" and session.get(GoalView, retro)
                        and session.get(PostView, post.json()["id"]))

    wait_for(arrived, timeout=30, message="goals and post in stories' read models")
    asked = call(system, "POST", "/stories/generate", token, json={"period": today})
    assert asked.status_code == 202, asked.text
    assert asked.headers["Location"] == f"/stories/{today}"
    assert asked.json()["status"] == "PENDING"

    def written() -> dict[str, Any]:
        body: dict[str, Any] = call(system, "GET", f"/stories/{today}", token).json()
        return body if body["status"] != "PENDING" else {}

    story = wait_for(written, timeout=30, interval=0.1, message="the story written")
    for name in ("Give the demo", "Write the retro", "Demo day", "Grace"):
        assert name in story["content"], (name, story)
    assert story["status"] == "READY" and story["periodKind"] == "DAY" and story["generatedAt"]
    listed = call(system, "GET", "/stories?limit=5", token).json()
    assert [s["period"] for s in listed["items"]] == [today]

    def counted() -> int:
        return int(call(system, "GET", "/auth/me", token).json()["dailyGenerationCount"])

    wait_for(lambda: counted() >= 1, timeout=20, message="auth's dailyGenerationCount")
    assert call(system, "GET", f"/stories/{today}", stranger).status_code == 404
    assert call(system, "DELETE", f"/stories/{today}", stranger).status_code == 404
    assert call(system, "GET", f"/stories/{today}").status_code == 401
    future = call(system, "POST", "/stories/generate", token, json={"period": "2999"})
    assert future.status_code == 422 and "period" in future.text
    assert call(system, "DELETE", f"/stories/{today}", token).status_code == 204
    assert call(system, "GET", f"/stories/{today}", token).status_code == 404
