"""The seed's migration rules, applied by shared.migration_ops to a table with rows while
another connection keeps writing to it: every write goes through, none waits longer than the
migration's lock_timeout."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from tests.migrations.conftest import LOCK_TIMEOUT_S, Lab, Writer

SLACK_S = 0.5  # scheduling on a busy 2-core machine


def assert_never_blocked(writer: Writer) -> None:
    assert not writer.errors, writer.errors
    assert writer.writes > writer.writes_before, "nothing was written during the migration"
    assert writer.longest < LOCK_TIMEOUT_S + SLACK_S, f"a write waited {writer.longest:.2f}s"


def index_state(lab: Lab, name: str) -> tuple[object, ...] | None:
    rows = lab.sql("SELECT i.indisvalid, i.indisunique FROM pg_index i "
                   "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s", name)
    return rows[0] if rows else None


def test_an_index_is_built_concurrently_replacing_an_invalid_leftover(
        lab: Lab, writer: Callable[..., Writer]) -> None:
    # A failed concurrent build (duplicates under UNIQUE) leaves an INVALID index behind.
    lab.sql("INSERT INTO lab.items (name) VALUES ('item 1')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        lab.sql("CREATE UNIQUE INDEX CONCURRENTLY ix_items_name ON lab.items (name)")
    assert index_state(lab, "ix_items_name") == (False, True)

    lab.revision("0001", 'create_index_concurrently("ix_items_name", "items", ["name"], '
                         'schema="lab")')
    with writer() as w:
        lab.upgrade()
    assert_never_blocked(w)
    assert index_state(lab, "ix_items_name") == (True, False)


def test_a_required_column_is_added_nullable_backfilled_then_made_not_null(
        lab: Lab, writer: Callable[..., Writer]) -> None:
    lab.revision("0001", """
        add_nullable_column("items", sa.Column("name_length", sa.Integer, nullable=True),
                            schema="lab", new_rows_default="0")
        backfill_in_batches("items", "name_length = length(name)", schema="lab",
                            where="name_length IS NULL", batch_size=500)
        make_column_required("items", "name_length", schema="lab")
    """)
    with writer() as w:  # the running release knows nothing of the new column
        lab.upgrade()
    assert_never_blocked(w)
    assert lab.sql("SELECT is_nullable FROM information_schema.columns WHERE "
                   "table_schema = 'lab' AND column_name = 'name_length'") == [("NO",)]
    assert lab.sql("SELECT count(*) FROM lab.items WHERE name LIKE 'item %%' "
                   "AND name_length <> length(name)") == [(0,)]
    assert lab.sql("SELECT conname FROM pg_constraint WHERE conname LIKE 'ck_items_%%'") == []


def test_a_rename_expands_then_contracts_while_both_releases_write(
        lab: Lab, writer: Callable[..., Writer]) -> None:
    lab.revision("0001", """
        expand_column_rename("items", "name", "title", sa.Text(), schema="lab")
        make_column_required("items", "title", schema="lab")
    """)
    with writer() as release_n:  # writes `name` only
        lab.upgrade()
    assert_never_blocked(release_n)
    assert lab.sql("SELECT count(*) FROM lab.items WHERE title IS DISTINCT FROM name") == [(0,)]

    # Release N+1 writes `title` only; the trigger keeps `name` (still NOT NULL) filled.
    lab.revision("0002", 'contract_column_rename("items", "name", "title", schema="lab")',
                 down="0001")
    release_n1 = {"insert": "INSERT INTO lab.items (title) VALUES ('new release')",
                  "update": "UPDATE lab.items SET title = title || '' "
                            "WHERE id = (random() * 4999)::int + 1"}
    with writer(**release_n1) as w:
        assert lab.sql("SELECT count(*) FROM lab.items WHERE title = 'new release' "
                       "AND name IS DISTINCT FROM title") == [(0,)]
        lab.upgrade()
    assert_never_blocked(w)
    columns = lab.sql("SELECT column_name FROM information_schema.columns "
                      "WHERE table_schema = 'lab' AND table_name = 'items' ORDER BY 1")
    assert columns == [("id",), ("title",)]
    assert lab.sql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'items_sync_%%'") == [(0,)]


def test_ddl_behind_a_long_transaction_gives_up_at_the_lock_timeout(
        lab: Lab, writer: Callable[..., Writer]) -> None:
    """Without lock_timeout the ALTER would queue behind the open transaction, and every
    write would queue behind the ALTER."""
    lab.revision("0001", 'add_nullable_column("items", sa.Column("note", sa.Text), '
                         'schema="lab")')
    with lab.connect() as holder, writer() as w:
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM lab.items")  # ACCESS SHARE, held
        with pytest.raises(Exception, match="lock timeout"):
            lab.upgrade()
        holder.execute("ROLLBACK")
    assert_never_blocked(w)
    lab.upgrade()  # and the retry succeeds
