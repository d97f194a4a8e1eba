"""A lab for migration patterns: a scratch database, a throwaway Alembic environment for the
schema `lab` whose revisions a test writes, and a writer that keeps writing meanwhile."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from psycopg.conninfo import make_conninfo

from shared.bootstrap import drop_database
from tests.helpers import wait_for

ENV_PY = """\
from sqlalchemy import MetaData

from shared.alembic_env import run

run(MetaData(schema="lab"))
"""


@dataclass
class Lab:
    database: str
    conninfo: str
    scripts: Path

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.conninfo, autocommit=True)

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        with self.connect() as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []

    def revision(self, rev: str, upgrade: str, *, down: str | None = None) -> None:
        """A revision file whose upgrade() body is `upgrade` (with shared.migration_ops'
        helpers, `sa` and `op` imported)."""
        body = textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")
        (self.scripts / "versions" / f"{rev}_lab.py").write_text(
            f'"""lab {rev}"""\n'
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            "from shared.migration_ops import *  # noqa: F403\n\n"
            f"revision = {rev!r}\ndown_revision = {down!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade() -> None:\n{body}\n")

    def config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.scripts))
        url = self.conninfo_url()
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        return config

    def conninfo_url(self) -> str:
        params = psycopg.conninfo.conninfo_to_dict(self.conninfo)
        user, host = params.get("user", "postgres"), params.get("host", "localhost")
        port, password = params.get("port", "5432"), params.get("password")
        auth = f"{user}:{password}" if password else str(user)
        return f"postgresql+psycopg://{auth}@{host}:{port}/{self.database}"

    def upgrade(self, target: str = "head") -> None:
        command.upgrade(self.config(), target)


@pytest.fixture
def lab(infrastructure: dict[str, str], tmp_path: Path) -> Iterator[Lab]:
    admin = infrastructure["admin_url"]
    database = f"{os.environ['DATABASE_NAME']}_lab"
    drop_database(admin, database)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    scripts = tmp_path / "lab_migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(ENV_PY)
    (scripts / "script.py.mako").write_text("")
    found = Lab(database, make_conninfo(admin, dbname=database), scripts)
    found.sql("CREATE SCHEMA lab")
    found.sql("CREATE TABLE lab.items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
              "name text NOT NULL)")
    found.sql("INSERT INTO lab.items (name) SELECT 'item ' || g FROM generate_series(1, 5000) g")
    yield found
    drop_database(admin, database)


@dataclass
class Writer:
    """Keeps inserting and updating rows of lab.items, one statement per transaction, as a
    running release would, and remembers the longest any statement took."""

    conninfo: str
    insert: str = "INSERT INTO lab.items (name) VALUES ('written meanwhile')"
    update: str = "UPDATE lab.items SET name = name || '' WHERE id = (random() * 4999)::int + 1"
    longest: float = 0.0
    writes: int = 0
    writes_before: int = 0  # when the block began: writes after it ran during the migration
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Writer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        wait_for(lambda: self.writes >= 20 or self.errors, timeout=5, interval=0.01,
                 message="the writer writing before the migration starts")
        self.writes_before = self.writes
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self._stop.is_set():
                for statement in (self.insert, self.update):
                    started = time.monotonic()
                    try:
                        conn.execute(statement)
                    except psycopg.Error as error:
                        self.errors.append(error)
                        return
                    self.longest = max(self.longest, time.monotonic() - started)
                    self.writes += 1


LOCK_TIMEOUT_S = 1.0


@pytest.fixture
def writer(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Writer]:
    """A Writer factory; the migrations of the test run with a 1 s lock_timeout."""
    monkeypatch.setenv("MIGRATION_LOCK_TIMEOUT", f"{int(LOCK_TIMEOUT_S * 1000)}ms")

    def make(*, insert: str | None = None, update: str | None = None) -> Writer:
        made = Writer(lab.conninfo)
        made.insert, made.update = insert or made.insert, update or made.update
        return made

    return make
