"""The twins of `prisma migrate deploy` and `prisma migrate reset`: two deploys of one service
at once apply its migrations once; a reset needs to be meant and touches one schema only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from psycopg.conninfo import make_conninfo

from shared.bootstrap import bootstrap, purge
from shared.config import role_name
from shared.migrate import alembic_config, url_in
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scratch(infrastructure: dict[str, str]) -> Iterator[str]:
    """A bootstrapped database of our own (never the dev database)."""
    name = f"{os.environ['DATABASE_NAME']}_deploys"
    bootstrap(infrastructure["admin_url"], name, drop=True)
    yield name
    purge(infrastructure["admin_url"], name)  # and its own roles


def admin_sql(admin_url: str, database: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(make_conninfo(admin_url, dbname=database), autocommit=True) as conn:
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else []


def run_env(database: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ENV", "CONFIRM")}
    return {**env, "DATABASE_NAME": database, "PYTHONPATH": str(ROOT), **extra}


def test_two_deploys_of_one_service_at_once_both_succeed_and_apply_once(
        infrastructure: dict[str, str], scratch: str) -> None:
    admin = infrastructure["admin_url"]
    with psycopg.connect(make_conninfo(admin, dbname=scratch), autocommit=True) as holder:
        # Hold goals' migration lock, so both deploys are certainly waiting at once.
        holder.execute("SELECT pg_advisory_lock(hashtextextended('shared.migrate:goals', 0))")
        deploys = [subprocess.Popen([sys.executable, "-m", "shared.migrate", "goals", "upgrade",
                                     "head"], cwd=ROOT, env=run_env(scratch), text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                   for _ in range(2)]
        waiting = """SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                     WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = %s"""

        def both_waiting() -> bool:
            assert all(d.poll() is None for d in deploys), [d.communicate() for d in deploys]
            return holder.execute(waiting, (scratch,)).fetchone() == (2,)

        wait_for(both_waiting, timeout=30, interval=0.05,
                 message="the two deploys waiting for the lock")
        holder.execute("SELECT pg_advisory_unlock(hashtextextended('shared.migrate:goals', 0))")
        outputs = [d.communicate(timeout=60)[0] for d in deploys]
    assert [d.returncode for d in deploys] == [0, 0], outputs
    applied = [out for out in outputs if "Running upgrade  -> 0001" in out]
    assert len(applied) == 1, outputs
    assert admin_sql(admin, scratch, "SELECT version_num FROM goals.alembic_version") == [
        (command_head("goals"),)]


def command_head(service: str) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(service)).get_current_head()
    assert head
    return head


def make_reset(database: str, **settings: str) -> subprocess.CompletedProcess[str]:
    assignments = [f"{k}={v}" for k, v in settings.items()]
    return subprocess.run(["make", "-s", "reset", "SERVICE=goals", *assignments], cwd=ROOT,
                          env=run_env(database), text=True, capture_output=True, timeout=300)


def test_reset_refuses_unless_meant_and_touches_only_its_schema(
        infrastructure: dict[str, str], scratch: str) -> None:
    admin = infrastructure["admin_url"]
    for service in ("goals", "diary"):
        command.upgrade(alembic_config(service, url_in(service, scratch)), "head")
    admin_sql(admin, scratch, "INSERT INTO goals.goals (id, user_id, title, period, start_date,"
                              " deadline) VALUES ('g1', 'u1', 'ship it', 'WEEKLY', now(), now())")
    admin_sql(admin, scratch, "INSERT INTO diary.posts (id, title, content, author_id) "
                              "VALUES ('p1', 'kept', 'untouched', 'u1')")

    refused = make_reset(scratch)
    assert refused.returncode != 0
    assert "refusing" in refused.stderr
    assert "ENV=development" in refused.stderr
    assert admin_sql(admin, scratch, "SELECT id FROM goals.goals") == [("g1",)]
    assert make_reset(scratch, ENV="production").returncode != 0

    done = make_reset(scratch, ENV="development")
    assert done.returncode == 0, done.stdout + done.stderr
    assert admin_sql(admin, scratch, "SELECT count(*) FROM goals.goals") == [(0,)]
    assert admin_sql(admin, scratch, "SELECT version_num FROM goals.alembic_version") == [
        (command_head("goals"),)]
    assert admin_sql(admin, scratch, "SELECT id FROM diary.posts") == [("p1",)]

    admin_sql(admin, scratch, "INSERT INTO goals.goals (id, user_id, title, period, start_date,"
                              " deadline) VALUES ('g2', 'u1', 'again', 'DAILY', now(), now())")
    assert make_reset(scratch, CONFIRM="1").returncode == 0
    assert admin_sql(admin, scratch, "SELECT count(*) FROM goals.goals") == [(0,)]
    # The service's own role still owns and reaches its schema after the reset.
    assert admin_sql(admin, scratch, "SELECT nspowner::regrole::text FROM pg_namespace "
                                     "WHERE nspname = 'goals'") == [(role_name("goals", scratch),)]


def test_reset_refuses_before_touching_the_database(infrastructure: dict[str, str]) -> None:
    """Without ENV=development or CONFIRM=1 it stops before connecting to anything."""
    refused = subprocess.run([sys.executable, "-m", "shared.migrate", "goals", "reset"],
                             cwd=ROOT, env=run_env("no_such_database_here"), text=True,
                             capture_output=True, timeout=60)
    assert refused.returncode == 2
    assert "refusing to drop the goals schema" in refused.stderr


def test_a_new_migration_is_named_in_snake_case_shown_as_sql_and_applied(
        scratch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from alembic.config import Config

    from shared import migrate

    copy = tmp_path / "migrations"
    shutil.copytree(ROOT / "services" / "goals" / "migrations", copy,
                    ignore=shutil.ignore_patterns("__pycache__"))

    def config(service: str, url: str | None = None) -> Config:
        found = alembic_config(service, url or url_in(service, scratch))
        found.set_main_option("script_location", str(copy))
        return found

    monkeypatch.setattr(migrate, "alembic_config", config)
    assert migrate.new_migration("goals", "Add-Goal-Notes") == 2
    assert migrate.new_migration("goals", "notes") == 2  # one word says too little
    assert "snake_case" in capsys.readouterr().err

    head = command_head("goals")
    assert migrate.new_migration("goals", "add_goal_notes") == 0
    out = capsys.readouterr().out
    new = f"{int(head) + 1:04d}"
    written = copy / "versions" / f"{new}_add_goal_notes.py"
    lint = subprocess.run([str(Path(sys.executable).parent / "ruff"), "check", "--config",
                           str(ROOT / "pyproject.toml"), str(written)],
                          cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout  # ready for `make lint` as written
    assert "the SQL it runs" in out and "SET lock_timeout" in out
    assert f"UPDATE goals.alembic_version SET version_num='{new}'" in out
    with psycopg.connect(make_conninfo(os.environ["DATABASE_ADMIN_URL"], dbname=scratch)) as c:
        assert c.execute("SELECT version_num FROM goals.alembic_version").fetchall() == [(new,)]
