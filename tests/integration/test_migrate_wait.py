"""`python -m shared.migrate <svc> wait`: what the init containers run before web and worker
start. Against the real PostgreSQL, on a scratch database of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from shared.bootstrap import bootstrap, drop_database
from shared.config import database_url
from shared.migrate import alembic_config, schema_state, wait_for_schema
from tests.conftest import ROOT
from tests.helpers import wait_for

SCRATCH = "growth_diary_wait_test"
SERVICE = "goals"


@pytest.fixture
def scratch(infrastructure: dict[str, str]) -> Iterator[str]:
    """A fresh database, bootstrapped (roles and schemas) and not migrated; its goals URL."""
    bootstrap(infrastructure["admin_url"], SCRATCH, drop=True)
    yield database_url(SERVICE, SCRATCH)  # its own roles
    drop_database(infrastructure["admin_url"], SCRATCH)


def cli_wait(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOALS_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "shared.migrate", SERVICE, "wait", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_a_schema_not_migrated_is_not_ready_and_the_wait_ends_at_its_deadline(
        scratch: str) -> None:
    lines: list[str] = []
    assert wait_for_schema(SERVICE, timeout=0.5, interval=0.1, url=scratch,
                           say=lines.append) is None
    assert "none (not migrated)" in lines[-1] and "not ready after" in lines[-1]
    done = cli_wait(scratch, "--timeout", "0.5", "--interval", "0.1")
    assert done.returncode == 1
    assert "schema not ready" in done.stdout


def test_a_schema_behind_head_waits_until_migrated(scratch: str) -> None:
    config = alembic_config(SERVICE, scratch)
    command.upgrade(config, "head")
    command.downgrade(config, "-1")
    behind = schema_state(SERVICE, scratch)
    assert behind.current and not behind.ready

    lines: list[str] = []
    result: list[object] = []
    waiter = threading.Thread(target=lambda: result.append(wait_for_schema(
        SERVICE, timeout=60, interval=0.1, url=scratch, say=lines.append)))
    waiter.start()
    # The waiter has seen the schema behind before the migration runs (else, on a busy
    # machine, the upgrade can finish before its first look).
    wait_for(lambda: lines, timeout=30, message="the waiter's first look")
    command.upgrade(config, "head")  # what the migrate Job does meanwhile
    waiter.join(timeout=60)
    state = result[0]
    assert state is not None and state.ready  # type: ignore[attr-defined]
    assert lines[0].startswith(f"{SERVICE}: waiting for the schema: at ")
    assert "schema ready" in lines[-1]

    done = cli_wait(scratch, "--timeout", "5")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_schema_migrated_by_a_newer_release_is_ready_for_a_rollback(scratch: str) -> None:
    config = alembic_config(SERVICE, scratch)
    command.upgrade(config, "head")
    url = make_url(scratch)
    with psycopg.connect(host=url.host, port=url.port, user=url.username,
                         password=url.password, dbname=SCRATCH, autocommit=True) as conn:
        conn.execute(f'UPDATE "{SERVICE}".alembic_version SET version_num = %s',
                     ("f00dfeedbeef",))
    state = schema_state(SERVICE, scratch)
    assert state.unknown == ("f00dfeedbeef",) and state.ready
    head = ScriptDirectory.from_config(config).get_current_head()
    assert state.heads == (head,)
    assert cli_wait(scratch, "--timeout", "5").returncode == 0


def test_an_unreachable_database_is_waited_for_then_reported(scratch: str) -> None:
    nobody = make_url(scratch).set(host="127.0.0.1", port=9).render_as_string(
        hide_password=False)
    lines: list[str] = []
    assert wait_for_schema(SERVICE, timeout=0.5, interval=0.1, url=nobody,
                           say=lines.append) is None
    assert "database not answering" in lines[-1]
