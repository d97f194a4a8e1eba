"""The body of every service's Alembic `env.py`.

Each service migrates only its own schema, as its own role, with its version table inside
that schema; objects of other schemas are invisible to autogenerate and `alembic check`.

Online, a migration runs under a session advisory lock named for its schema (two deploys of
one service wait for each other; the second finds the work done), and with `lock_timeout`
and `statement_timeout` set, so a DDL statement queued behind a long transaction gives up
instead of blocking every write that queues behind it (retry the deploy). Settings:
MIGRATION_LOCK_TIMEOUT (5s), MIGRATION_STATEMENT_TIMEOUT (15min), MIGRATION_WAIT_TIMEOUT
(10min: how long to wait for another deploy's migration). Offline (`--sql`), the rendered
script starts with the same two SET statements.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from alembic import context
from sqlalchemy import MetaData, create_engine, pool, text
from sqlalchemy.engine import Connection

from shared.config import database_url, env

LOCK_KEY_SQL = "hashtextextended('shared.migrate:' || :schema, 0)"


def timeouts() -> dict[str, str]:
    """The session settings every migration runs under (PostgreSQL interval strings)."""
    return {"lock_timeout": env("MIGRATION_LOCK_TIMEOUT", "5s"),
            "statement_timeout": env("MIGRATION_STATEMENT_TIMEOUT", "15min")}


def run(metadata: MetaData) -> None:
    schema = metadata.schema
    assert schema, "service metadata must name its schema"
    url = context.config.get_main_option("sqlalchemy.url") or database_url(schema)

    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        return name == schema if type_ == "schema" else True

    def include_object(obj: Any, name: str | None, type_: str, _reflected: bool,
                       _compare_to: Any) -> bool:
        if type_ == "table":
            return bool(obj.schema == schema and name != "alembic_version")
        return True

    options: dict[str, Any] = dict(
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_name=include_name,
        include_object=include_object,
        compare_type=True,
        compare_server_default=True,
    )
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            for name, value in timeouts().items():
                context.execute(f"SET {name} = '{value}'")
            context.run_migrations()
        return
    # Reflect our schema by its name, never as "the default schema", whatever the role's
    # search_path: that is what keeps comparisons exact and other schemas out.
    engine = create_engine(url, poolclass=pool.NullPool,
                           connect_args={"options": "-c search_path=public"})
    with engine.connect() as connection, migration_lock(connection, schema):
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()


@contextlib.contextmanager
def migration_lock(conn: Connection, schema: str) -> Iterator[Connection]:
    """Hold the schema's session advisory lock (waiting up to MIGRATION_WAIT_TIMEOUT), with
    the migration timeouts set; released when the block ends, however it ends.

    A session lock, not a transaction one: revisions with an autocommit block (CREATE INDEX
    CONCURRENTLY, batched backfills) commit in the middle, and the lock must outlive that.
    """
    # lock_timeout bounds the wait for an advisory lock too: that wait gets its own bound.
    set_session(conn, {"lock_timeout": env("MIGRATION_WAIT_TIMEOUT", "10min")})
    conn.execute(text(f"SELECT pg_advisory_lock({LOCK_KEY_SQL})"), {"schema": schema})
    set_session(conn, timeouts())
    conn.commit()
    try:
        yield conn
    finally:
        if not (conn.invalidated or conn.closed):  # else the session, and its lock, are gone
            conn.rollback()
            conn.execute(text(f"SELECT pg_advisory_unlock({LOCK_KEY_SQL})"), {"schema": schema})
            conn.commit()


def set_session(conn: Connection, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        conn.execute(text("SELECT set_config(:name, :value, false)"),
                     {"name": name, "value": value})
