"""Editing, unpublishing, the feed and a user's page: what a reader sees, page by page."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from services.diary.handlers import HANDLERS
from shared.db import Database
from tests.diary.conftest import Member, write
from tests.diary.test_posts_api import outbox_events
from tests.helpers import apply_events, event, make_consumer

POST_FIELDS = {"id", "title", "content", "status", "author", "likeCount", "replyCount",
               "likedByMe", "publishedAt", "createdAt", "updatedAt"}


def feed_ids(diary: Any, who: Member, **query: Any) -> list[str]:
    """Every post id of the feed, following cursors to the end."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        page = diary.get("/diary/feed", query_string=params, headers=who.headers)
        assert page.status_code == 200, page.json
        ids += [item["id"] for item in page.json["items"]]
        cursor = page.json["nextCursor"]
        if cursor is None:
            return ids


def test_a_post_has_the_contracts_fields(diary: Any, member: Callable[[], Member]) -> None:
    ada = member()
    post = write(diary, ada, status="PUBLISHED")
    assert set(post) == POST_FIELDS
    assert post["author"] == {"id": ada.id, "name": None, "image": None}
    assert (post["likeCount"], post["replyCount"], post["likedByMe"]) == (0, 0, False)


def test_title_and_content_are_trimmed_and_bounded(diary: Any,
                                                   member: Callable[[], Member]) -> None:
    ada = member()
    post = write(diary, ada, title="  Week 48  ", content="\n body \n")
    assert (post["title"], post["content"]) == ("Week 48", "body")
    for body, field in [({"title": "   "}, "title"), ({"title": "x" * 201}, "title"),
                        ({"content": " "}, "content"), ({"content": "x" * 50_001}, "content")]:
        created = diary.post("/diary/posts", json={"title": "t", "content": "c", **body},
                             headers=ada.headers)
        assert created.status_code == 422 and field in created.json["errors"], body
        patched = diary.patch(f"/diary/posts/{post['id']}", json=body, headers=ada.headers)
        assert patched.status_code == 422 and field in patched.json["errors"], body
    assert write(diary, ada, title="x" * 200, content="y" * 50_000)["title"] == "x" * 200
    # Whitespace is what the documented pattern (JavaScript's \s) calls it: "\u3000" and
    # "\ufeff" are, the separator controls Python's str.strip() would also take are not.
    for blank in ("\u3000\ufeff", "\u2028 "):
        created = diary.post("/diary/posts", json={"title": "t", "content": blank},
                             headers=ada.headers)
        assert created.status_code == 422 and "content" in created.json["errors"], blank
    assert write(diary, ada, content="\x1c")["content"] == "\x1c"
    pattern = diary.get("/diary/openapi.json").json["components"]["schemas"]["PostCreate"][
        "properties"]["content"]["pattern"]
    assert re.search(pattern, "\x1c") and not re.search(pattern, "\u3000\ufeff")


def test_editing_a_published_post_raises_diary_post_updated_with_the_next_version(
        diary: Any, member: Callable[[], Member], dbs: Any) -> None:
    ada = member()
    post = write(diary, ada, status="PUBLISHED")
    edited = diary.patch(f"/diary/posts/{post['id']}", json={"title": " Week 49 "},
                         headers=ada.headers)
    assert edited.status_code == 200 and edited.json["title"] == "Week 49"
    assert edited.json["content"] == post["content"]
    # The same text again changes nothing and says nothing.
    diary.patch(f"/diary/posts/{post['id']}", json={"title": "Week 49"}, headers=ada.headers)
    events = outbox_events(dbs, post["id"])
    assert [t for t, _ in events] == ["diary.post.published", "diary.post.updated"]
    assert events[1][1]["data"]["title"] == "Week 49"
    assert [e["data"]["version"] for _, e in events] == [2, 3]


def test_editing_a_draft_raises_no_event(diary: Any, member: Callable[[], Member],
                                         dbs: Any) -> None:
    ada = member()
    post = write(diary, ada)
    assert diary.patch(f"/diary/posts/{post['id']}", json={"content": "more"},
                       headers=ada.headers).json["content"] == "more"
    assert outbox_events(dbs, post["id"]) == []


def test_unpublishing_hides_a_post_and_republishing_shows_it_with_its_likes_and_replies(
        diary: Any, member: Callable[[], Member], dbs: Any) -> None:
    ada, bob = member(), member()
    post = write(diary, ada, status="PUBLISHED")
    path = f"/diary/posts/{post['id']}"
    diary.put(f"{path}/like", headers=bob.headers)
    diary.post(f"{path}/replies", json={"content": "Nice"}, headers=bob.headers)

    hidden = diary.post(f"{path}/unpublish", headers=ada.headers)
    assert hidden.status_code == 200
    assert hidden.json["status"] == "DRAFT" and hidden.json["publishedAt"] is None
    assert diary.post(f"{path}/unpublish", headers=ada.headers).status_code == 200  # idempotent
    assert post["id"] not in feed_ids(diary, bob)
    for sub in ("", "/likes", "/replies"):
        assert diary.get(path + sub, headers=bob.headers).status_code == 404, sub
    assert diary.get(path, headers=ada.headers).json["likeCount"] == 1

    shown = diary.post(f"{path}/publish", headers=ada.headers).json
    assert (shown["likeCount"], shown["replyCount"]) == (1, 1)
    assert shown["publishedAt"] > post["publishedAt"]
    assert feed_ids(diary, bob)[0] == post["id"]  # newest published first
    types = [(t, e["data"]["version"]) for t, e in outbox_events(dbs, post["id"])]
    assert types == [("diary.post.published", 2), ("diary.post.unpublished", 3),
                     ("diary.post.published", 4)]


def test_the_feed_pages_newest_published_first_without_gaps_or_repeats(
        diary: Any, member: Callable[[], Member]) -> None:
    ada, bob = member(), member()
    drafted = write(diary, ada)
    written = [write(diary, ada if i % 2 else bob, title=f"p{i}", status="PUBLISHED")["id"]
               for i in range(7)]
    # A draft published now is the newest published, though written first.
    diary.post(f"/diary/posts/{drafted['id']}/publish", headers=ada.headers)
    expected = [drafted["id"], *reversed(written)]
    everything = feed_ids(diary, bob, limit=3)
    assert [i for i in everything if i in expected] == expected
    assert len(everything) == len(set(everything))


def test_a_feed_item_shows_my_like_counters_and_the_author(
        diary: Any, member: Callable[[], Member], settings: Any, db: Database) -> None:
    ada, bob = member(), member()
    post = write(diary, ada, status="PUBLISHED")
    diary.put(f"/diary/posts/{post['id']}/like", headers=bob.headers)
    item = diary.get("/diary/feed?limit=1", headers=bob.headers).json["items"][0]
    assert item["id"] == post["id"]
    assert (item["likeCount"], item["likedByMe"]) == (1, True)
    assert item["author"] == {"id": ada.id, "name": None, "image": None}  # profile not yet here
    ada_view = diary.get("/diary/feed?limit=1", headers=ada.headers).json["items"][0]
    assert (ada_view["likeCount"], ada_view["likedByMe"]) == (1, False)

    consumer = make_consumer(settings("diary"), db, HANDLERS)
    apply_events(consumer, event("auth.user.registered", user_id=ada.id, name="Ada",
                                 image="https://img.example/ada.png"))
    item = diary.get("/diary/feed?limit=1", headers=bob.headers).json["items"][0]
    assert item["author"] == {"id": ada.id, "name": "Ada",
                              "image": "https://img.example/ada.png"}


@pytest.mark.parametrize("query", [
    "cursor=not-a-cursor", "cursor=%21%21", "cursor=" + "A" * 201, "cursor=",
    "cursor=MjAyNi0xMi0wMVQwMDowMDowMCswMDowMHxhAGI",  # decodes to an id with a NUL
    "limit=0", "limit=101", "limit=x",
])
def test_a_bad_cursor_or_limit_is_a_422(diary: Any, member: Callable[[], Member],
                                        query: str) -> None:
    ada = member()
    for path in ("/diary/feed", f"/diary/users/{ada.id}/posts", "/diary/posts/x/likes",
                 "/diary/posts/x/replies"):
        response = diary.get(f"{path}?{query}", headers=ada.headers)
        assert response.status_code == 422, (path, query, response.json)
        assert response.mimetype == "application/problem+json"


def test_a_users_page_shows_others_their_published_posts_and_them_their_drafts_too(
        diary: Any, member: Callable[[], Member]) -> None:
    ada, bob = member(), member()
    draft = write(diary, ada)["id"]
    published = write(diary, ada, status="PUBLISHED")["id"]
    write(diary, bob, status="PUBLISHED")
    page = f"/diary/users/{ada.id}/posts"

    def ids(who: Member, query: str = "") -> list[str]:
        response = diary.get(f"{page}{query}", headers=who.headers)
        assert response.status_code == 200, response.json
        return [p["id"] for p in response.json["items"]]

    assert ids(bob) == [published]
    assert ids(bob, "?status=DRAFT") == []
    assert ids(bob, "?status=PUBLISHED") == [published]
    assert ids(ada) == [published, draft]
    assert ids(ada, "?status=DRAFT") == [draft]
    assert ids(ada, "?status=PUBLISHED") == [published]
    assert diary.get(f"{page}?status=SECRET", headers=ada.headers).status_code == 422
    assert ids(ada, "?limit=1") == [published]
    cursor = diary.get(f"{page}?limit=1", headers=ada.headers).json["nextCursor"]
    assert ids(ada, f"?limit=1&cursor={cursor}") == [draft]


def test_anyone_elses_draft_and_every_change_of_my_post_is_a_404_to_others(
        diary: Any, member: Callable[[], Member]) -> None:
    ada, bob = member(), member()
    draft = write(diary, ada)["id"]
    published = write(diary, ada, status="PUBLISHED")["id"]
    reply = diary.post(f"/diary/posts/{published}/replies", json={"content": "mine"},
                       headers=ada.headers).json["id"]
    for method, path, body in [
        ("get", f"/diary/posts/{draft}", None),
        ("get", f"/diary/posts/{draft}/likes", None),
        ("get", f"/diary/posts/{draft}/replies", None),
        ("put", f"/diary/posts/{draft}/like", None),
        ("post", f"/diary/posts/{draft}/replies", {"content": "hi"}),
        ("patch", f"/diary/posts/{published}", {"title": "mine now"}),
        ("delete", f"/diary/posts/{published}", None),
        ("post", f"/diary/posts/{published}/unpublish", None),
        ("post", f"/diary/posts/{draft}/publish", None),
        ("patch", f"/diary/replies/{reply}", {"content": "edited by bob"}),
        ("delete", f"/diary/replies/{reply}", None),
        ("get", "/diary/posts/nope", None),
        ("get", "/diary/posts/a%00b", None),
        ("get", f"/diary/posts/{'x' * 40}", None),
        ("get", "/diary/users/a%00b/posts", None),
    ]:
        response = getattr(diary, method)(path, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, path, response.json)
        assert response.mimetype == "application/problem+json"
    assert diary.get(f"/diary/posts/{published}", headers=ada.headers).json["title"] == \
        "Week 48"


@pytest.mark.parametrize("token", [None, "garbage", "expired"])
def test_every_route_refuses_a_missing_bad_or_expired_token(
        diary: Any, make_token: Callable[..., str], token: str | None) -> None:
    headers = {}
    if token == "garbage":
        headers = {"Authorization": "Bearer not.a.token"}
    elif token == "expired":
        headers = {"Authorization": f"Bearer {make_token('someone', ttl=-60)}"}
    for method, path in [("get", "/diary/feed"), ("post", "/diary/posts"),
                         ("get", "/diary/posts/p1"), ("patch", "/diary/posts/p1"),
                         ("delete", "/diary/posts/p1"), ("post", "/diary/posts/p1/publish"),
                         ("post", "/diary/posts/p1/unpublish"), ("put", "/diary/posts/p1/like"),
                         ("delete", "/diary/posts/p1/like"), ("get", "/diary/posts/p1/likes"),
                         ("get", "/diary/posts/p1/replies"),
                         ("post", "/diary/posts/p1/replies"), ("patch", "/diary/replies/r1"),
                         ("delete", "/diary/replies/r1"), ("get", "/diary/users/u1/posts"),
                         ("get", "/diary/posts/a%00b")]:
        response = getattr(diary, method)(path, json={}, headers=headers)
        assert response.status_code == 401, (method, path, token)
