"""The diary as a front end sees it, through nginx with every service's web process and
worker running: write, publish, like, reply, edit, unpublish, and a reader's deletion."""

from __future__ import annotations

from typing import Any

from shared.ids import new_id

# The gateway test's fixtures (a whole system behind nginx, a mail catcher) and marks.
from tests.e2e.test_gateway import System, call, pytestmark, smtp, system  # noqa: F401
from tests.helpers import wait_for


def member(gateway: System, name: str) -> tuple[str, str]:
    """(user id, access token) of a new member, registered and logged in."""
    email, password = f"{new_id()}@example.com", "correct horse battery staple"
    registered = call(gateway, "POST", "/auth/register",
                      json={"email": email, "password": password, "name": name})
    assert registered.status_code == 201, registered.text
    login = call(gateway, "POST", "/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    token = login.json()["accessToken"]
    return call(gateway, "GET", "/auth/me", token).json()["id"], token


def first_in_feed(gateway: System, token: str) -> dict[str, Any]:
    feed = call(gateway, "GET", "/diary/feed?limit=1", token)
    assert feed.status_code == 200, feed.text
    return dict(feed.json()["items"][0])


def test_a_post_is_written_published_liked_replied_to_and_outlives_a_readers_deletion(
        system: System) -> None:  # noqa: F811 - the fixture imported above
    ada_id, ada = member(system, "Ada")
    bob_id, bob = member(system, "Bob")

    draft = call(system, "POST", "/diary/posts", ada,
                 json={"title": " Week 48 ", "content": "Shipped the outbox."})
    assert draft.status_code == 201, draft.text
    post = draft.json()["id"]
    assert draft.json()["title"] == "Week 48" and draft.json()["status"] == "DRAFT"
    assert call(system, "GET", f"/diary/posts/{post}", bob).status_code == 404
    assert call(system, "POST", f"/diary/posts/{post}/publish", ada).status_code == 200

    # The author's profile reaches diary through auth.user.registered.
    wait_for(lambda: first_in_feed(system, bob)["author"] == {
        "id": ada_id, "name": "Ada", "image": None}, message="Ada's name in the feed")
    assert first_in_feed(system, bob)["id"] == post

    like = call(system, "PUT", f"/diary/posts/{post}/like", bob)
    assert like.json() == {"likeCount": 1, "likedByMe": True}
    assert call(system, "PUT", f"/diary/posts/{post}/like", bob).json()["likeCount"] == 1
    reply = call(system, "POST", f"/diary/posts/{post}/replies", bob, json={"content": "Nice!"})
    assert reply.status_code == 201, reply.text
    seen = first_in_feed(system, bob)
    assert (seen["likeCount"], seen["replyCount"], seen["likedByMe"]) == (1, 1, True)
    replies = call(system, "GET", f"/diary/posts/{post}/replies", ada).json()["items"]
    assert [(r["content"], r["author"]["id"]) for r in replies] == [("Nice!", bob_id)]
    assert call(system, "GET", "/diary/feed?cursor=nonsense", bob).status_code == 422

    assert call(system, "PATCH", f"/diary/posts/{post}", bob,
                json={"title": "Mine"}).status_code == 404
    assert call(system, "PATCH", f"/diary/posts/{post}", ada,
                json={"title": "Week 48, revised"}).json()["title"] == "Week 48, revised"
    assert call(system, "POST", f"/diary/posts/{post}/unpublish", ada).status_code == 200
    assert call(system, "GET", f"/diary/posts/{post}", bob).status_code == 404
    shown = call(system, "POST", f"/diary/posts/{post}/publish", ada).json()
    assert (shown["likeCount"], shown["replyCount"]) == (1, 1)  # kept while a draft

    # Bob leaves: his like and reply go, and Ada's counters follow.
    assert call(system, "DELETE", "/auth/me", bob).status_code == 204

    def counts() -> tuple[int, int]:
        got = call(system, "GET", f"/diary/posts/{post}", ada).json()
        return got["likeCount"], got["replyCount"]

    wait_for(lambda: counts() == (0, 0), message="Bob's like and reply removed")
    assert call(system, "GET", f"/diary/posts/{post}/replies", ada).json()["items"] == []
    assert call(system, "PUT", f"/diary/posts/{post}/like", bob).status_code == 401
    assert call(system, "DELETE", f"/diary/posts/{post}", ada).status_code == 204
    assert call(system, "GET", f"/diary/posts/{post}", ada).status_code == 404
