"""Rows for the studio to show (written as the admin, into the test database), and the studio
app on them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

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
def seeded(database: str, infrastructure: dict[str, str]) -> Iterator[Seeded]:
    user, tag = new_id(), new_id()[:8]
    found = Seeded(user=user, email=f"studio-{tag}@example.test", published=new_id(),
                   draft=new_id(), likers=(new_id(), new_id(), new_id()), reply=new_id(),
                   goal=new_id())
    password, access, refresh, id_token, session_hash, reset_hash = SECRETS
    with psycopg.connect(admin_conninfo(infrastructure), autocommit=True) as conn:
        conn.execute("INSERT INTO auth.users (id, email, name, password) VALUES (%s, %s, %s, %s)",
                     (user, found.email, f"Studio {tag}", password))
        conn.execute("INSERT INTO auth.accounts (id, user_id, type, provider, "
                     "provider_account_id, access_token, refresh_token, id_token, token_type) "
                     "VALUES (%s, %s, 'oauth', 'github', %s, %s, %s, %s, 'bearer')",
                     (new_id(), user, tag, access, refresh, id_token))
        conn.execute("INSERT INTO auth.sessions (id, user_id, session_token, expires) "
                     "VALUES (%s, %s, %s, now() + interval '1 day')",
                     (new_id(), user, session_hash))
        conn.execute("INSERT INTO auth.password_resets (id, user_id, token, expires_at) "
                     "VALUES (%s, %s, %s, now() + interval '1 hour')", (new_id(), user, reset_hash))
        conn.execute("INSERT INTO diary.posts (id, title, content, status, author_id, "
                     "published_at) VALUES (%s, %s, 'what I learnt', 'PUBLISHED', %s, now())",
                     (found.published, f"Published by studio {tag}", user))
        conn.execute("INSERT INTO diary.posts (id, title, content, status, author_id) "
                     "VALUES (%s, %s, 'not yet', 'DRAFT', %s)",
                     (found.draft, f"Draft by studio {tag}", user))
        for liker in found.likers:
            conn.execute("INSERT INTO diary.likes (id, user_id, post_id) VALUES (%s, %s, %s)",
                         (new_id(), liker, found.published))
        conn.execute("INSERT INTO diary.replies (id, content, author_id, post_id) "
                     "VALUES (%s, %s, %s, %s)",
                     (found.reply, f"Reply from studio {tag}", found.likers[0], found.published))
        conn.execute("INSERT INTO goals.goals (id, user_id, title, period, status, start_date, "
                     "deadline) VALUES (%s, %s, %s, 'WEEKLY', 'ACTIVE', now(), now())",
                     (found.goal, user, f"Studio goal {tag}"))
    yield found
    with psycopg.connect(admin_conninfo(infrastructure), autocommit=True) as conn:
        conn.execute("DELETE FROM auth.users WHERE id = %s", (user,))  # cascades in auth
        conn.execute("DELETE FROM diary.posts WHERE author_id = %s", (user,))  # and in diary
        conn.execute("DELETE FROM goals.goals WHERE id = %s", (found.goal,))


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
