"""Rows for the studio to show (written as the admin, into the test database), and the studio
app on them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg.conninfo import make_conninfo

from shared.ids import new_id
from studio.app import StudioSettings, create_app

PASSWORD = "studio-test-password"
# Values no page may ever show.
SECRETS = ("$argon2id$v=19$m=65536,t=3,p=4$SECRETSALT$SECRETHASH", "ya29.SECRET-ACCESS-TOKEN",
           "SECRET-REFRESH-TOKEN", "eyJSECRET-ID-TOKEN", "5ec2e7" * 10 + "abcd",
           "0ddba11" * 9 + "f")


@dataclass(frozen=True)
class Seeded:
    user: str
    email: str
    published: str
    draft: str
    likers: tuple[str, ...]
    reply: str
    goal: str


def admin_conninfo(infrastructure: dict[str, str]) -> str:
    return make_conninfo(infrastructure["admin_url"], dbname=os.environ["DATABASE_NAME"])


@pytest.fixture(scope="module")
def seeded(database: str, infrastructure: dict[str, str], client: Callable[[str], Any],
           make_token: Callable[..., str]) -> Iterator[Seeded]:
    """A user with secrets in auth (written as the admin: the studio reads what is there);
    posts, likes, a reply and a goal made through the services' own APIs, so the rows have
    whatever shape the services give them today."""
    user, tag = new_id(), new_id()[:8]
    password, access, refresh, id_token, session_hash, reset_hash = SECRETS
    email = f"studio-{tag}@example.test"
    with psycopg.connect(admin_conninfo(infrastructure), autocommit=True) as conn:
        conn.execute("INSERT INTO auth.users (id, email, name, password) VALUES (%s, %s, %s, %s)",
                     (user, email, f"Studio {tag}", password))
        conn.execute("INSERT INTO auth.accounts (id, user_id, type, provider, "
                     "provider_account_id, access_token, refresh_token, id_token, token_type) "
                     "VALUES (%s, %s, 'oauth', 'github', %s, %s, %s, %s, 'bearer')",
                     (new_id(), user, tag, access, refresh, id_token))
        conn.execute("INSERT INTO auth.sessions (id, user_id, session_token, expires) "
                     "VALUES (%s, %s, %s, now() + interval '1 day')",
                     (new_id(), user, session_hash))
        conn.execute("INSERT INTO auth.password_resets (id, user_id, token, expires_at) "
                     "VALUES (%s, %s, %s, now() + interval '1 hour')", (new_id(), user, reset_hash))

    def as_user(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(user_id)}"}

    def ok(answer: Any) -> Any:
        assert answer.status_code < 300, answer.get_data(as_text=True)
        return answer.get_json(silent=True)

    diary, likers = client("diary"), (new_id(), new_id(), new_id())
    made: dict[str, str] = {}
    try:
        made["published"] = ok(diary.post("/diary/posts", headers=as_user(user), json={
            "title": f"Published by studio {tag}", "content": "what I learnt"}))["id"]
        ok(diary.post(f"/diary/posts/{made['published']}/publish", headers=as_user(user)))
        made["draft"] = ok(diary.post("/diary/posts", headers=as_user(user), json={
            "title": f"Draft by studio {tag}", "content": "not yet"}))["id"]
        made["goal"] = ok(client("goals").post("/goals", headers=as_user(user), json={
            "title": f"Studio goal {tag}", "period": "WEEKLY"}))["id"]
        # Likes and replies in the seed's columns (the diary API for them is being written).
        made["reply"] = new_id()
        with psycopg.connect(admin_conninfo(infrastructure), autocommit=True) as conn:
            for liker in likers:
                conn.execute("INSERT INTO diary.likes (id, user_id, post_id) "
                             "VALUES (%s, %s, %s)", (new_id(), liker, made["published"]))
            conn.execute("INSERT INTO diary.replies (id, content, author_id, post_id) "
                         "VALUES (%s, %s, %s, %s)", (made["reply"], f"Reply from studio {tag}",
                                                     likers[0], made["published"]))
        yield Seeded(user=user, email=email, published=made["published"], draft=made["draft"],
                     likers=likers, reply=made["reply"], goal=made["goal"])
    finally:
        with psycopg.connect(admin_conninfo(infrastructure), autocommit=True) as conn:
            conn.execute("DELETE FROM auth.users WHERE id = %s", (user,))  # cascades in auth
            conn.execute("DELETE FROM diary.posts WHERE id = ANY(%s)",  # and in diary
                         ([made.get("published"), made.get("draft")],))
            conn.execute("DELETE FROM goals.goals WHERE id = %s", (made.get("goal"),))


def settings(**changes: object) -> StudioSettings:
    values: dict[str, object] = dict(host="127.0.0.1", port=5555, password=PASSWORD,
                                     write=False, secret_key="test-key")
    values.update(changes)
    return StudioSettings(**values)  # type: ignore[arg-type]


def dispose(app: Flask) -> None:
    """Close the app's pooled connections (Flask-SQLAlchemy keeps one engine per bind)."""
    with app.app_context():
        for engine in app.extensions["studio"]["db"].engines.values():
            engine.dispose()


@pytest.fixture(scope="module")
def studio_app(database: str) -> Iterator[Flask]:
    app = create_app(settings())
    yield app
    dispose(app)


@pytest.fixture
def browse(studio_app: Flask, seeded: Seeded) -> FlaskClient:
    """A signed-in client of the read-only studio."""
    client = studio_app.test_client()
    answer = client.post("/login", data={"password": PASSWORD})
    assert answer.status_code == 302
    return client
