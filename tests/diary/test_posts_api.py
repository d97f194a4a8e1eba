"""The diary posts HTTP contract (this issue's part of it), in-process against the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from tests.helpers import new_user_id

Client = Callable[[str], Any]


@pytest.fixture
def author(auth_header: Callable[[str], dict[str, str]]) -> tuple[str, dict[str, str]]:
    user_id = new_user_id()
    return user_id, auth_header(user_id)


def write(client: Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client("diary").post("/diary/posts", json={
        "title": "Week 48", "content": "Shipped the outbox.", **body}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def outbox_events(dbs: Any, post_id: str) -> list[tuple[str, dict[str, Any]]]:
    db = dbs("diary")
    with db.engine.connect() as conn:
        rows = conn.execute(select(db.outbox.c.type, db.outbox.c.payload)
                            .order_by(db.outbox.c.seq)).all()
    return [(r.type, r.payload) for r in rows if r.payload["data"]["post_id"] == post_id]


def test_a_new_post_is_a_private_draft_and_raises_no_event(client: Client, author: Any,
                                                           auth_header: Any, dbs: Any) -> None:
    user_id, headers = author
    post = write(client, headers)
    assert post["author"] == {"id": user_id, "name": None, "image": None}
    assert post["status"] == "DRAFT" and post["publishedAt"] is None
    assert client("diary").get(f"/diary/posts/{post['id']}", headers=headers).status_code == 200
    stranger = auth_header(new_user_id())
    assert client("diary").get(f"/diary/posts/{post['id']}",
                               headers=stranger).status_code == 404
    assert outbox_events(dbs, post["id"]) == []


def test_publishing_a_post_writes_diary_post_published_to_the_outbox(
        client: Client, author: Any, dbs: Any) -> None:
    user_id, headers = author
    post = write(client, headers)
    published = client("diary").post(f"/diary/posts/{post['id']}/publish", headers=headers)
    assert published.status_code == 200
    assert published.json["status"] == "PUBLISHED" and published.json["publishedAt"]

    [(type_, envelope)] = outbox_events(dbs, post["id"])
    assert type_ == "diary.post.published"
    assert envelope["specversion"] == "1.0" and envelope["subject"] == user_id
    assert envelope["data"] == {"post_id": post["id"], "author_id": user_id,
                                "title": "Week 48",
                                "published_at": published.json["publishedAt"],
                                "version": 2}


def test_publishing_twice_publishes_once(client: Client, author: Any, dbs: Any) -> None:
    _, headers = author
    post = write(client, headers)
    first = client("diary").post(f"/diary/posts/{post['id']}/publish", headers=headers).json
    again = client("diary").post(f"/diary/posts/{post['id']}/publish", headers=headers).json
    assert again["publishedAt"] == first["publishedAt"]
    events = outbox_events(dbs, post["id"])
    assert [t for t, _ in events] == ["diary.post.published"]
    assert events[0][1]["data"]["version"] == 2


def test_a_post_can_be_written_published(client: Client, author: Any, dbs: Any) -> None:
    _, headers = author
    post = write(client, headers, status="PUBLISHED")
    assert post["status"] == "PUBLISHED" and post["publishedAt"]
    assert [t for t, _ in outbox_events(dbs, post["id"])] == ["diary.post.published"]


def test_only_the_author_publishes_or_deletes(client: Client, author: Any,
                                              auth_header: Any) -> None:
    _, headers = author
    diary = client("diary")
    post = write(client, headers)
    stranger = auth_header(new_user_id())
    assert diary.post(f"/diary/posts/{post['id']}/publish", headers=stranger).status_code == 404
    assert diary.delete(f"/diary/posts/{post['id']}", headers=stranger).status_code == 404
    diary.post(f"/diary/posts/{post['id']}/publish", headers=headers)
    # Published, the post is anyone's to read, still only its author's to delete.
    assert diary.get(f"/diary/posts/{post['id']}", headers=stranger).status_code == 200
    assert diary.delete(f"/diary/posts/{post['id']}", headers=stranger).status_code == 404


def test_deleting_a_post_records_the_event_and_the_post_is_gone(client: Client, author: Any,
                                                                dbs: Any) -> None:
    user_id, headers = author
    diary = client("diary")
    post = write(client, headers, status="PUBLISHED")
    assert diary.delete(f"/diary/posts/{post['id']}", headers=headers).status_code == 204
    assert diary.get(f"/diary/posts/{post['id']}", headers=headers).status_code == 404
    for gone in ("likes", "replies"):  # nothing of it answers any more
        assert diary.get(f"/diary/posts/{post['id']}/{gone}", headers=headers).status_code == 404
    assert diary.put(f"/diary/posts/{post['id']}/like", headers=headers).status_code == 404
    events = outbox_events(dbs, post["id"])
    assert [t for t, _ in events] == ["diary.post.published", "diary.post.deleted"]
    assert events[-1][1]["data"]["author_id"] == user_id
    # Each change raises the post's version, so consumers can order the events.
    assert [e["data"]["version"] for _, e in events] == [2, 3]


def test_bad_input_is_reported_field_by_field(client: Client, author: Any) -> None:
    _, headers = author
    response = client("diary").post("/diary/posts", json={"title": "", "status": "SECRET"},
                                    headers=headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert set(response.json["errors"]) == {"title", "content", "status"}


def test_without_a_valid_token_nothing_is_shown(client: Client) -> None:
    response = client("diary").post("/diary/posts", json={"title": "x", "content": "y"})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_health_and_openapi_are_served(client: Client) -> None:
    diary = client("diary")
    assert diary.get("/diary/healthz").json == {"status": "ok", "service": "diary"}
    paths = diary.get("/diary/openapi.json").json["paths"]
    assert {"/diary/posts", "/diary/posts/{post_id}", "/diary/posts/{post_id}/publish"} <= set(
        paths)
