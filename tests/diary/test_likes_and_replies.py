"""Likes and replies through the API: idempotent likes, who may reply, edit and delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.diary.handlers import HANDLERS
from shared.db import Database
from tests.diary.conftest import Member, kept_counts, true_counts, write
from tests.helpers import apply_events, event, make_consumer


def test_liking_twice_counts_once_and_unliking_twice_uncounts_once(
        diary: Any, member: Callable[[], Member], db: Database) -> None:
    ada, bob = member(), member()
    post = write(diary, ada, status="PUBLISHED")["id"]
    like = f"/diary/posts/{post}/like"
    assert diary.put(like, headers=bob.headers).json == {"likeCount": 1, "likedByMe": True}
    assert diary.put(like, headers=bob.headers).json == {"likeCount": 1, "likedByMe": True}
    assert diary.put(like, headers=ada.headers).json == {"likeCount": 2, "likedByMe": True}
    assert diary.delete(like, headers=bob.headers).json == {"likeCount": 1, "likedByMe": False}
    assert diary.delete(like, headers=bob.headers).json == {"likeCount": 1, "likedByMe": False}
    assert kept_counts(db, post) == true_counts(db, post) == (1, 0)


def test_liking_a_draft_or_a_missing_post_is_a_404(diary: Any,
                                                   member: Callable[[], Member]) -> None:
    ada = member()
    draft = write(diary, ada)["id"]
    for path in (f"/diary/posts/{draft}/like", "/diary/posts/nope/like"):
        assert diary.put(path, headers=ada.headers).status_code == 404
        assert diary.delete(path, headers=ada.headers).status_code == 404


def test_the_likes_list_shows_who_liked_newest_first_with_their_names(
        diary: Any, member: Callable[[], Member], settings: Any, db: Database) -> None:
    ada, bob, cy = member(), member(), member()
    apply_events(make_consumer(settings("diary"), db, HANDLERS),
                 event("auth.user.registered", user_id=bob.id, name="Bob", image=None))
    post = write(diary, ada, status="PUBLISHED")["id"]
    diary.put(f"/diary/posts/{post}/like", headers=bob.headers)
    diary.put(f"/diary/posts/{post}/like", headers=cy.headers)
    first = diary.get(f"/diary/posts/{post}/likes?limit=1", headers=ada.headers).json
    assert [item["user"] for item in first["items"]] == [
        {"id": cy.id, "name": None, "image": None}]
    second = diary.get(f"/diary/posts/{post}/likes?limit=1&cursor={first['nextCursor']}",
                       headers=ada.headers).json
    assert [item["user"] for item in second["items"]] == [
        {"id": bob.id, "name": "Bob", "image": None}]
    assert second["nextCursor"] is None
    assert second["items"][0]["createdAt"] <= first["items"][0]["createdAt"]
    assert diary.get("/diary/posts/nope/likes", headers=ada.headers).status_code == 404


def test_replies_list_oldest_first_with_their_authors_and_count(
        diary: Any, member: Callable[[], Member], db: Database) -> None:
    ada, bob = member(), member()
    post = write(diary, ada, status="PUBLISHED")["id"]
    written = []
    for i, who in enumerate([bob, ada, bob]):
        created = diary.post(f"/diary/posts/{post}/replies", json={"content": f" r{i} "},
                             headers=who.headers)
        assert created.status_code == 201, created.json
        assert set(created.json) == {"id", "postId", "content", "author", "createdAt",
                                     "updatedAt"}
        assert created.json["content"] == f"r{i}" and created.json["postId"] == post
        written.append(created.json["id"])
    page = diary.get(f"/diary/posts/{post}/replies?limit=2", headers=bob.headers).json
    rest = diary.get(f"/diary/posts/{post}/replies?limit=2&cursor={page['nextCursor']}",
                     headers=bob.headers).json
    assert [r["id"] for r in page["items"] + rest["items"]] == written
    assert page["items"][0]["author"] == {"id": bob.id, "name": None, "image": None}
    assert diary.get(f"/diary/posts/{post}", headers=bob.headers).json["replyCount"] == 3
    assert kept_counts(db, post) == true_counts(db, post) == (0, 3)


def test_a_reply_is_1_to_5000_characters_and_only_on_published_posts(
        diary: Any, member: Callable[[], Member]) -> None:
    ada = member()
    post = write(diary, ada, status="PUBLISHED")["id"]
    draft = write(diary, ada)["id"]
    for content in ("  ", "x" * 5001):
        response = diary.post(f"/diary/posts/{post}/replies", json={"content": content},
                              headers=ada.headers)
        assert response.status_code == 422 and "content" in response.json["errors"]
    assert diary.post(f"/diary/posts/{post}/replies", json={}, headers=ada.headers
                      ).status_code == 422
    assert diary.post(f"/diary/posts/{post}/replies", json={"content": "x" * 5000},
                      headers=ada.headers).status_code == 201
    assert diary.post(f"/diary/posts/{draft}/replies", json={"content": "hi"},
                      headers=ada.headers).status_code == 404
    assert diary.post("/diary/posts/nope/replies", json={"content": "hi"},
                      headers=ada.headers).status_code == 404


def test_a_reply_is_edited_by_its_author_and_deleted_by_them_or_the_posts_author(
        diary: Any, member: Callable[[], Member], db: Database) -> None:
    ada, bob, cy = member(), member(), member()
    post = write(diary, ada, status="PUBLISHED")["id"]

    def reply(who: Member) -> str:
        return str(diary.post(f"/diary/posts/{post}/replies", json={"content": "hi"},
                              headers=who.headers).json["id"])

    bobs, cys = reply(bob), reply(cy)
    edited = diary.patch(f"/diary/replies/{bobs}", json={"content": " better "},
                         headers=bob.headers)
    assert edited.status_code == 200 and edited.json["content"] == "better"
    assert edited.json["updatedAt"] >= edited.json["createdAt"]
    assert diary.patch(f"/diary/replies/{bobs}", json={"content": "mine"},
                       headers=ada.headers).status_code == 404  # the post's author cannot
    assert diary.patch(f"/diary/replies/{bobs}", json={"content": ""},
                       headers=bob.headers).status_code == 422
    assert diary.delete(f"/diary/replies/{bobs}", headers=cy.headers).status_code == 404
    assert diary.delete(f"/diary/replies/{bobs}", headers=bob.headers).status_code == 204
    assert diary.delete(f"/diary/replies/{cys}", headers=ada.headers).status_code == 204
    assert diary.delete(f"/diary/replies/{cys}", headers=ada.headers).status_code == 404
    assert diary.patch("/diary/replies/nope", json={"content": "x"},
                       headers=bob.headers).status_code == 404
    assert kept_counts(db, post) == true_counts(db, post) == (0, 0)


def test_deleting_a_post_takes_its_likes_replies_and_counters(
        diary: Any, member: Callable[[], Member], db: Database) -> None:
    ada, bob = member(), member()
    post = write(diary, ada, status="PUBLISHED")["id"]
    diary.put(f"/diary/posts/{post}/like", headers=bob.headers)
    reply = diary.post(f"/diary/posts/{post}/replies", json={"content": "hi"},
                       headers=bob.headers).json["id"]
    assert diary.delete(f"/diary/posts/{post}", headers=ada.headers).status_code == 204
    assert true_counts(db, post) == (0, 0) and kept_counts(db, post) is None
    assert diary.patch(f"/diary/replies/{reply}", json={"content": "x"},
                       headers=bob.headers).status_code == 404
