"""GET /stories: my stories, newest first, a page at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import new_user_id
from tests.stories.support import ready_story

Client = Callable[[str], Any]


def seed_stories(dbs: Any, user_id: str, periods: list[str]) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with dbs("stories").sessions.begin() as session:
        session.add_all(ready_story(user_id, p, f"About {p}", created_at=start + timedelta(days=i))
                        for i, p in enumerate(periods))


def test_i_see_only_my_stories_newest_first_a_page_at_a_time(
        client: Client, auth_header: Any, dbs: Any) -> None:
    me, someone = new_user_id(), new_user_id()
    seed_stories(dbs, me, ["2026-W45", "2026-W46", "2026-W47"])
    seed_stories(dbs, someone, ["2026-W45"])
    stories = client("stories")
    headers = auth_header(me)

    first = stories.get("/stories?limit=2", headers=headers).json
    assert [s["period"] for s in first["items"]] == ["2026-W47", "2026-W46"]
    assert first["items"][0]["userId"] == me and first["items"][0]["content"] == "About 2026-W47"
    rest = stories.get(f"/stories?limit=2&cursor={first['nextCursor']}", headers=headers).json
    assert [s["period"] for s in rest["items"]] == ["2026-W45"] and rest["nextCursor"] is None
    assert stories.get("/stories", headers=auth_header(new_user_id())).json == {
        "items": [], "nextCursor": None}


def test_bad_paging_input_is_a_field_error(client: Client, auth_header: Any) -> None:
    headers = auth_header(new_user_id())
    for query in ("limit=0", "cursor=garbage!"):
        response = client("stories").get(f"/stories?{query}", headers=headers)
        assert response.status_code == 422, query
        assert response.mimetype == "application/problem+json"


def test_stories_need_a_valid_token(client: Client) -> None:
    assert client("stories").get("/stories").status_code == 401


def test_health_and_openapi_are_served(client: Client) -> None:
    stories = client("stories")
    assert stories.get("/stories/healthz").json == {"status": "ok", "service": "stories"}
    assert "/stories" in stories.get("/stories/openapi.json").json["paths"]
