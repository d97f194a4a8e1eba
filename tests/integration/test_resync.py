"""Resyncs through the real workers, relays and broker: read models wiped (and corrupted)
are rebuilt from their producers while live traffic goes on, equal at the end to a reference
computed from the producers' own tables."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from services.auth import users
from services.auth.models import User
from shared import resync
from shared.db import Database, UnitOfWork
from shared.ids import new_id
from tests.helpers import ServiceProcess, new_user_id, start_worker, wait_for

SERVICES = ("stories", "diary", "goals", "auth")  # consumers' queues first


@pytest.fixture(scope="module")
def workers(infrastructure: dict[str, str]) -> Iterator[list[ServiceProcess]]:
    """Every service's worker, as deployed; small batches, so a resync spans many."""
    procs: list[ServiceProcess] = []
    env = {**os.environ, "RESYNC_BATCH": "50"}
    try:
        for service in SERVICES:
            procs.append(start_worker(service, env, amqp_url=infrastructure["amqp_url"],
                                      log_name=f"resync-{service}-worker.log"))
        yield procs
    finally:
        for proc in procs:
            proc.terminate()


def rows(db: Database, sql: str, **params: Any) -> set[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return {tuple(r) for r in conn.execute(text(sql), params)}


def tombstoned(db: Database) -> set[str]:
    return {r[0] for r in rows(db, "SELECT user_id FROM deleted_user")}


def completed(db: Database, request_id: str) -> bool:
    return bool(rows(db, "SELECT 1 FROM resync WHERE request_id = :r "
                         "AND completed_at IS NOT NULL", r=request_id))


def alive(workers: list[ServiceProcess]) -> bool:
    assert all(p.alive() for p in workers), [p.log_tail() for p in workers]
    return True


class LiveGoals:
    """A thread creating and completing goals through the API until stopped."""

    def __init__(self, api: Any, headers: dict[str, str]) -> None:
        self.api, self.headers = api, headers
        self.stop = threading.Event()
        self.made = 0
        self.thread = threading.Thread(target=self._run, name="live-goals")

    def _run(self) -> None:
        while not self.stop.is_set():
            made = self.api.post("/goals", json={"title": f"Live {self.made}",
                                                 "period": "DAILY"}, headers=self.headers)
            assert made.status_code == 201, made.json
            if self.made % 2 == 0:
                done = self.api.post(f"/goals/{made.json['id']}/complete",
                                     headers=self.headers)
                assert done.status_code == 200, done.json
            self.made += 1

    def __enter__(self) -> LiveGoals:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(30)


def goal_reference(goals: Database, stories: Database) -> set[tuple[Any, ...]]:
    dead = tombstoned(stories)
    return {r for r in rows(goals, "SELECT id, user_id, title, status::text, version, "
                                   "completed_at FROM goals") if r[1] not in dead}


def goal_model(stories: Database) -> set[tuple[Any, ...]]:
    return rows(stories, "SELECT goal_id, user_id, title, status, version, completed_at "
                         "FROM goal_views")


def post_reference(diary: Database, stories: Database) -> set[tuple[Any, ...]]:
    dead = tombstoned(stories)
    return {r for r in rows(diary, "SELECT id, author_id, title, version FROM posts "
                                   "WHERE status = 'PUBLISHED'") if r[1] not in dead}


def post_model(stories: Database) -> set[tuple[Any, ...]]:
    return rows(stories, "SELECT post_id, author_id, title, version FROM post_views")


def test_stories_read_models_are_rebuilt_from_goals_and_diary_while_goals_change(
        workers: list[ServiceProcess], client: Callable[[str], Any],
        auth_header: Callable[[str], dict[str, str]],
        dbs: Callable[[str], Database]) -> None:
    goals_api, diary_api = client("goals"), client("diary")
    goals, diary, stories = dbs("goals"), dbs("diary"), dbs("stories")
    ours = [new_user_id() for _ in range(3)]
    for user_id in ours:
        headers = auth_header(user_id)
        for i in range(4):
            made = goals_api.post("/goals", json={"title": f"Goal {i}", "period": "WEEKLY"},
                                  headers=headers).json
            if i % 2:
                goals_api.post(f"/goals/{made['id']}/complete", headers=headers)
        for status in ("PUBLISHED", "PUBLISHED", "DRAFT"):
            diary_api.post("/diary/posts", json={"title": status.title(), "content": "x",
                                                 "status": status}, headers=headers)
    wait_for(lambda: goal_model(stories) >= {g for g in goal_reference(goals, stories)
                                             if g[1] in ours},
             timeout=30, message="the live pipeline to deliver our goals")

    with stories.engine.begin() as conn:  # lost, then corrupted with rows nobody has
        for table in ("goal_views", "deleted_goals", "post_views", "withdrawn_posts"):
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our table names
        conn.execute(text("INSERT INTO goal_views (goal_id, user_id, title, period, status, "
                          "version) VALUES (:g, :u, 'Stray', 'WEEKLY', 'ACTIVE', 9)"),
                     {"g": new_id(), "u": new_user_id()})
        conn.execute(text("INSERT INTO post_views (post_id, author_id, title, version) "
                          "VALUES (:p, :u, 'Stray', 3)"), {"p": new_id(), "u": new_user_id()})

    with LiveGoals(client("goals"), auth_header(new_user_id())) as live:
        wait_for(lambda: live.made > 0, message="live writes under way")
        from_goals = resync.request(stories, asker="stories", producer="goals")
        from_diary = resync.request(stories, asker="stories", producer="diary")
        before = live.made
        wait_for(lambda: completed(stories, from_goals) and completed(stories, from_diary),
                 timeout=120, message="both resyncs completed")
        during = live.made - before
    assert during > 0  # goals were created and completed while the resync ran
    wait_for(lambda: goal_model(stories) == goal_reference(goals, stories), timeout=60,
             message="stories' goals equal to goals' own")
    wait_for(lambda: post_model(stories) == post_reference(diary, stories), timeout=60,
             message="stories' posts equal to diary's published ones")
    assert alive(workers)


def test_a_resync_racing_a_user_deletion_leaves_nothing_of_the_user(
        workers: list[ServiceProcess], dbs: Callable[[str], Database]) -> None:
    auth, goals, stories, diary = dbs("auth"), dbs("goals"), dbs("stories"), dbs("diary")
    with auth.sessions() as session:
        user = User(email=f"racer-{new_id()}@example.com", name="Racer")
        session.add(user)
        session.commit()
        user_id = user.id
    with goals.engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO goals (id, title, period, status, start_date, deadline, user_id)
            SELECT 'race' || g || :u, 'Goal ' || g, 'WEEKLY', 'ACTIVE', now(),
                   now() + interval '7 days', :u
            FROM generate_series(1, 300) AS g"""), {"u": user_id})
    diary_heard = rows(diary, "SELECT count(*) FROM inbox WHERE type = 'auth.user.snapshot'")

    asked = [resync.request(stories, asker="stories", producer=p) for p in ("goals", "auth")]
    with UnitOfWork(auth, source="auth") as uow:
        users.delete_user(uow, user_id)
        uow.commit()
    wait_for(lambda: all(completed(stories, r) for r in asked), timeout=120,
             message="both resyncs completed")
    wait_for(lambda: user_id in tombstoned(stories), message="stories' tombstone")
    wait_for(lambda: not rows(goals, "SELECT 1 FROM goals WHERE user_id = :u", u=user_id),
             message="goals to forget the user")

    def nothing_left() -> bool:
        return not any(rows(stories, f"SELECT 1 FROM {table} WHERE {column} = :u",  # noqa: S608
                            u=user_id)
                       for table, column in (("goal_views", "user_id"),
                                             ("profiles", "user_id"),
                                             ("post_views", "author_id")))

    wait_for(nothing_left, timeout=30, message="nothing of the user in stories")
    wait_for(lambda: goal_model(stories) == goal_reference(goals, stories), timeout=60,
             message="every queued snapshot applied")
    assert nothing_left()
    # Stories' snapshots of auth were addressed to stories: diary heard none of them.
    assert rows(diary, "SELECT count(*) FROM inbox WHERE type = 'auth.user.snapshot'") \
        == diary_heard
    assert alive(workers)


def test_diarys_authors_and_stories_profiles_are_rebuilt_from_auth_while_profiles_change(
        workers: list[ServiceProcess], dbs: Callable[[str], Database]) -> None:
    auth, diary, stories = dbs("auth"), dbs("diary"), dbs("stories")
    with auth.sessions() as session:
        people = [User(email=f"author-{new_id()}@example.com", name=f"Author {i}")
                  for i in range(5)]
        session.add_all(people)
        session.commit()
        ids = [p.id for p in people]
    with diary.engine.begin() as conn:
        conn.execute(text("DELETE FROM authors"))
        conn.execute(text("INSERT INTO authors (user_id, name, updated_at) "
                          "VALUES (:u, 'Nobody', now())"), {"u": new_user_id()})
    with stories.engine.begin() as conn:
        conn.execute(text("DELETE FROM profiles"))
        conn.execute(text("INSERT INTO profiles (user_id, name, updated_at) "
                          "VALUES (:u, 'Nobody', now())"), {"u": new_user_id()})

    stop, renamed = threading.Event(), [0]

    def rename() -> None:  # live profile changes, through auth's one rule for them
        while not stop.is_set():
            with UnitOfWork(auth, source="auth") as uow:
                user = uow.session.get(User, ids[renamed[0] % len(ids)], with_for_update=True)
                assert user is not None
                users.change_profile(uow, user, {"name": f"Renamed {renamed[0]}"})
                uow.commit()
            renamed[0] += 1

    thread = threading.Thread(target=rename, name="live-profiles")
    thread.start()
    try:
        request_id = resync.request(diary, asker="diary", producer="auth")
        profiles = resync.request(stories, asker="stories", producer="auth")
        wait_for(lambda: completed(diary, request_id) and completed(stories, profiles),
                 timeout=120, message="the resyncs of authors and profiles completed")
    finally:
        stop.set()
        thread.join(30)
    assert renamed[0] > 0

    def reference(consumer: Database, columns: str) -> set[tuple[Any, ...]]:
        dead = tombstoned(consumer)
        return {r for r in rows(auth, f"SELECT id, {columns} FROM users")  # noqa: S608
                if r[0] not in dead}

    wait_for(lambda: rows(diary, "SELECT user_id, name, image FROM authors")
             == reference(diary, "name, image"),
             timeout=60, message="diary's authors equal to auth's users")
    profile = "name, experience_level::text, bio, array_to_string(current_skills, ',')"
    wait_for(lambda: rows(stories, "SELECT user_id, name, experience_level, bio, "
                                   "array_to_string(current_skills, ',') FROM profiles")
             == reference(stories, profile),
             timeout=60, message="stories' profiles equal to auth's users")
    assert alive(workers)
