"""The studio (`make studio`): every table of every service, browsed read-only, secrets never
shown, relations followed; edits only when asked for, and then said to raise no events."""

from __future__ import annotations

import os

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from shared.bootstrap import studio_password, studio_role
from shared.config import database_url
from studio.app import create_app
from studio.catalogue import Catalogue
from tests.studio.conftest import PASSWORD, SECRETS, Seeded, dispose, settings


def page(client: FlaskClient, url: str) -> str:
    answer = client.get(url)
    assert answer.status_code == 200, (url, answer.status_code, answer.location)
    return answer.get_data(as_text=True)


def test_every_table_of_every_service_is_listed_with_its_row_count(browse: FlaskClient) -> None:
    home = page(browse, "/")
    catalogue = Catalogue()
    for service, entries in catalogue.by_service().items():
        assert f'id="service-{service}"' in home
        for entry in entries:
            assert f'data-table="{entry.key}"' in home
            page(browse, f"/{service}/{entry.table.name}/")
    # The messaging tables every service has come from the metadata like the rest.
    assert {"diary.posts", "diary.likes", "diary.replies", "diary.authors",
            "diary.outbox"} <= set(catalogue.entries)


def test_the_studio_asks_for_its_password(studio_app: Flask, seeded: Seeded) -> None:
    client = studio_app.test_client()
    answer = client.get("/diary/posts/")
    assert answer.status_code == 302 and answer.location.startswith("/login")
    assert client.post("/login", data={"password": "wrong"}).status_code == 401
    assert client.get("/diary/posts/").status_code == 302
    signed_in = client.post("/login?next=/diary/posts/", data={"password": PASSWORD})
    assert signed_in.location == "/diary/posts/"
    assert client.get("/diary/posts/").status_code == 200


def test_secrets_are_never_shown_in_lists_or_details(browse: FlaskClient, seeded: Seeded) -> None:
    catalogue = Catalogue()
    pages = []
    for key in ("auth.users", "auth.accounts", "auth.sessions", "auth.password_resets"):
        entry = catalogue.entries[key]
        listed = page(browse, f"/auth/{entry.table.name}/?search=&flt0_user_id_equals="
                              f"{seeded.user}" if key != "auth.users" else "/auth/users/")
        pages.append(listed)
        assert "••••••" in listed
    pages.append(page(browse, f"/auth/users/details/?id={seeded.user}"))
    for text in pages:
        for secret in SECRETS:
            assert secret not in text
    assert seeded.email in pages[-1]
    assert "bearer" in pages[1]  # token_type is not a secret


def test_posts_filter_by_status_and_author(browse: FlaskClient, seeded: Seeded) -> None:
    drafts = page(browse, "/diary/posts/?flt0_status_equals=DRAFT")
    assert seeded.draft in drafts and seeded.published not in drafts
    published = page(browse, "/diary/posts/?flt0_status_equals=PUBLISHED")
    assert seeded.published in published and seeded.draft not in published
    by_author = page(browse, f"/diary/posts/?flt0_author_id_equals={seeded.user}")
    assert seeded.published in by_author and seeded.draft in by_author
    # Any column sorts (the author's posts only: other tests' posts share the table).
    ascending = page(browse, f"/diary/posts/?flt0_author_id_equals={seeded.user}&sort=1")
    descending = page(browse, f"/diary/posts/?flt0_author_id_equals={seeded.user}&sort=1&desc=1")
    titles = ("Published by studio", "Draft by studio")
    assert all(t in ascending and t in descending for t in titles)
    assert (ascending.index(titles[0]) < ascending.index(titles[1])) != (
        descending.index(titles[0]) < descending.index(titles[1])), "the order flips"


def test_goals_filter_by_user_status_and_period_and_users_search_by_email(
        browse: FlaskClient, seeded: Seeded) -> None:
    goals = page(browse, f"/goals/goals/?flt0_user_id_equals={seeded.user}"
                         "&flt1_status_equals=ACTIVE&flt2_period_equals=WEEKLY")
    assert seeded.goal in goals
    assert seeded.goal not in page(browse, f"/goals/goals/?flt0_user_id_equals={seeded.user}"
                                           "&flt1_period_equals=DAILY")
    found = page(browse, f"/auth/users/?search={seeded.email}")
    assert seeded.user in found
    assert seeded.user in page(browse, f"/auth/users/?flt0_email_equals={seeded.email}")


def test_relations_are_followed_inside_a_schema(browse: FlaskClient, seeded: Seeded) -> None:
    post = page(browse, f"/diary/posts/details/?id={seeded.published}")
    assert "3 likes" in post and "1 replies" in post
    assert post.count("/diary/likes/details/?id=") == 3
    assert f"/diary/replies/details/?id={seeded.reply}" in post
    likes = page(browse, f"/diary/likes/?flt0_post_id_equals={seeded.published}")
    assert f"/diary/likes/?flt0_post_id_equals={seeded.published}" in post  # the list of them
    assert all(liker in likes for liker in seeded.likers)
    reply = page(browse, f"/diary/replies/details/?id={seeded.reply}")
    assert f"/diary/posts/details/?id={seeded.published}" in reply  # and back
    user = page(browse, f"/auth/users/details/?id={seeded.user}")
    assert "1 accounts" in user and "1 sessions" in user


def test_it_is_read_only_by_default(browse: FlaskClient, seeded: Seeded) -> None:
    listed = page(browse, "/diary/posts/")
    assert "Read-only" in listed and studio_role() in listed
    assert browse.get("/diary/posts/new/").status_code in (302, 403, 404)
    assert browse.post(f"/diary/posts/edit/?id={seeded.draft}",
                       data={"title": "changed"}).status_code in (302, 403, 404)
    assert "changed" not in page(browse, f"/diary/posts/details/?id={seeded.draft}")


# Flask-Admin 2.2's enum select hands WTForms 3.3 choices in the shape it now deprecates.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_editing_is_opt_in_and_says_it_raises_no_events(database: str, seeded: Seeded) -> None:
    app = create_app(settings(write=True))
    try:
        client = app.test_client()
        client.post("/login", data={"password": PASSWORD})
        form = page(client, "/diary/posts/new/")
        assert "raise no events" in form
        edit = page(client, f"/auth/users/edit/?id={seeded.user}")
        assert 'name="email"' in edit and 'name="password"' not in edit
    finally:
        dispose(app)


def test_it_refuses_to_listen_beyond_localhost_without_a_password() -> None:
    assert settings(host="0.0.0.0", password="").refusal()
    assert settings(host="127.0.0.1", password="").refusal() is None
    assert settings(host="0.0.0.0", password="set").refusal() is None
    with pytest.raises(SystemExit, match="STUDIO_PASSWORD"):
        create_app(settings(host="0.0.0.0", password=""))


def test_the_read_only_role_can_select_everything_and_insert_nothing(
        database: str, seeded: Seeded) -> None:
    url = make_url(database_url("diary"))
    with psycopg.connect(host=url.host, port=url.port, user=studio_role(),
                         password=studio_password(), dbname=os.environ["DATABASE_NAME"],
                         autocommit=True) as conn:
        for entry in Catalogue():  # tables migrations created after bootstrap too
            conn.execute(f'SELECT 1 FROM "{entry.service}"."{entry.table.name}" LIMIT 1')
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO diary.posts (id, title, content, author_id) "
                         "VALUES ('x', 'x', 'x', 'x')")
        # Its sessions are read-only by default, and even when it turns that off, it may not.
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO diary.posts (id, title, content, author_id) "
                         "VALUES ('x', 'x', 'x', 'x')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE auth.users SET name = 'x'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE diary.intruder (id int)")
