"""Migration steps the services share: the messaging tables every first revision creates,
and the seed's rules for changing a live table (docs/migrations.md walks through each):

- `create_index_concurrently` / `drop_index_concurrently`: an index in its own revision,
  built without blocking writes;
- `add_nullable_column` -> `backfill_in_batches` -> `make_column_required`: a required
  column, added nullable, filled in short transactions, made NOT NULL through a
  `CHECK ... NOT VALID` that is validated without blocking writes;
- `expand_column_rename` ... `contract_column_rename`: a rename in two releases, the old
  and the new column kept equal by a trigger in between.

Each statement that takes a lock writes can wait for runs in a short transaction of its own,
under the migration's `lock_timeout` (shared/alembic_env.py), so a write never waits longer.
Kept as plain Alembic operations (not generated from metadata at run time) so that a
revision, once written, means the same thing forever.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# --- squawk exceptions (shared/migration_lint.py) -------------------------------------------

_declared: dict[str, str] | None = None


def squawk_exception(rule: str, why: str) -> None:
    """Declare, inside a revision's upgrade(), that squawk's `rule` is knowingly broken
    there, and why. Does nothing when the migration runs; the lint reads it when rendering."""
    if len(why.split()) < 3:
        raise ValueError(f"squawk exception {rule}: say why, in a sentence")
    if _declared is not None:
        _declared[rule] = why


@contextlib.contextmanager
def recording_squawk_exceptions() -> Iterator[dict[str, str]]:
    global _declared
    _declared = {}
    try:
        yield _declared
    finally:
        _declared = None


def _qualified(schema: str, name: str) -> str:
    return f'"{schema}"."{name}"'


# --- an index in its own revision -----------------------------------------------------------


def create_index_concurrently(name: str, table: str, columns: Sequence[str], *, schema: str,
                              unique: bool = False, where: str | None = None) -> None:
    """CREATE INDEX CONCURRENTLY, outside the revision's transaction (Alembic's autocommit
    block: commits what the revision did before it, so put it in a revision of its own).

    A failed concurrent build leaves an INVALID index behind that IF NOT EXISTS would take
    for done: it is dropped first (online when found invalid; the offline script always
    drops, then builds)."""
    context = op.get_context()
    index = _qualified(schema, name)
    with context.autocommit_block():
        if context.as_sql or _invalid_index(schema, name):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index}")
        op.execute(
            f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY IF NOT EXISTS \"{name}\" "
            f"ON {_qualified(schema, table)} ({', '.join(columns)})"
            + (f" WHERE {where}" if where else ""))


def _invalid_index(schema: str, name: str) -> bool:
    row = op.get_bind().execute(sa.text(
        "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relname = :n"
    ), {"s": schema, "n": name}).first()
    return bool(row and row[0])


def drop_index_concurrently(name: str, *, schema: str) -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_qualified(schema, name)}")


# --- a required column: nullable, backfilled, then NOT NULL ---------------------------------


def add_nullable_column(table: str, column: sa.Column[object], *, schema: str,
                        new_rows_default: str | None = None) -> None:
    """Step 1: the column, nullable (a catalogue change, no rewrite). `new_rows_default`
    (SQL) is set once the column exists: rows inserted from then on, by the release still
    running too, get it, while the existing rows stay NULL for the backfill. (One constant
    for every row needs no backfill: ADD COLUMN ... DEFAULT is instant since PostgreSQL 11.)"""
    if not column.nullable or column.server_default is not None:
        raise ValueError(f"{column.name}: add it nullable and without a server default "
                         "(new_rows_default=...), backfill, then make_column_required")
    op.add_column(table, column, schema=schema, if_not_exists=True)
    if new_rows_default is not None:
        op.alter_column(table, column.name, server_default=sa.text(new_rows_default),
                        schema=schema)


def backfill_in_batches(table: str, assignment: str, *, schema: str, where: str,
                        key: str = "id", batch_size: int = 1000) -> None:
    """Step 2: `UPDATE ... SET <assignment>` on the rows matching `where`, `batch_size`
    rows (by primary key `key`) per transaction until none is left, so no row lock is held
    for long. Runs outside the revision's transaction (commits what came before)."""
    target = _qualified(schema, table)
    batch = (f"UPDATE {target} SET {assignment} WHERE \"{key}\" IN "
             f"(SELECT \"{key}\" FROM {target} WHERE {where} LIMIT {int(batch_size)})")
    context = op.get_context()
    with context.autocommit_block():
        if context.as_sql:  # the same loop, for a script: a DO block may COMMIT outside BEGIN
            op.execute(f"""DO $$
DECLARE n bigint;
BEGIN
    LOOP
        {batch};
        GET DIAGNOSTICS n = ROW_COUNT;
        EXIT WHEN n = 0;
        COMMIT;
    END LOOP;
END $$""")
            return
        bind = op.get_bind()
        while bind.execute(sa.text(batch)).rowcount:
            pass


def make_column_required(table: str, column: str, *, schema: str) -> None:
    """Step 3: NOT NULL without a long lock. `CHECK (col IS NOT NULL) NOT VALID` (instant),
    `VALIDATE` (scans, but lets writes through), then `SET NOT NULL`, which PostgreSQL 12+
    proves from the valid check instead of scanning, and the check is dropped. Each in its
    own transaction, outside the revision's."""
    target = _qualified(schema, table)
    check = f'"ck_{table}_{column}_not_null"'
    squawk_exception("adding-not-nullable-field",
                     "SET NOT NULL follows a validated CHECK (col IS NOT NULL): no table scan "
                     "under the exclusive lock")
    with op.get_context().autocommit_block():
        op.execute(f"ALTER TABLE {target} DROP CONSTRAINT IF EXISTS {check}")
        op.execute(f'ALTER TABLE {target} ADD CONSTRAINT {check} CHECK ("{column}" IS NOT NULL)'
                   " NOT VALID")
        op.execute(f"ALTER TABLE {target} VALIDATE CONSTRAINT {check}")
        op.execute(f'ALTER TABLE {target} ALTER COLUMN "{column}" SET NOT NULL')
        op.execute(f"ALTER TABLE {target} DROP CONSTRAINT {check}")


# --- a rename in two releases: expand, then contract ----------------------------------------


def _sync_name(table: str, old: str, new: str) -> str:
    """The trigger, and its function, that keep `old` and `new` equal."""
    return f"{table}_sync_{old}_{new}"


def expand_column_rename(table: str, old: str, new: str, type_: sa.types.TypeEngine[object],
                         *, schema: str, key: str = "id") -> None:
    """Release N+1's migration: `new` beside `old`, kept equal by a trigger whichever one a
    release writes (N writes `old`, N+1 writes `new`), and backfilled in batches. If `old`
    is NOT NULL, follow with make_column_required(table, new) in the same or a later
    revision; drop `old` with contract_column_rename once no running release uses it."""
    function = trigger = _sync_name(table, old, new)
    op.add_column(table, sa.Column(new, type_, nullable=True), schema=schema,
                  if_not_exists=True)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {_qualified(schema, function)}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                NEW."{new}" := COALESCE(NEW."{new}", NEW."{old}");
                NEW."{old}" := COALESCE(NEW."{old}", NEW."{new}");
            ELSIF NEW."{new}" IS DISTINCT FROM OLD."{new}" THEN
                NEW."{old}" := NEW."{new}";
            ELSIF NEW."{old}" IS DISTINCT FROM OLD."{old}" THEN
                NEW."{new}" := NEW."{old}";
            END IF;
            RETURN NEW;
        END $$""")
    op.execute(f'DROP TRIGGER IF EXISTS "{trigger}" ON {_qualified(schema, table)}')
    op.execute(f'CREATE TRIGGER "{trigger}" BEFORE INSERT OR UPDATE ON '
               f"{_qualified(schema, table)} FOR EACH ROW EXECUTE FUNCTION "
               f"{_qualified(schema, function)}()")
    backfill_in_batches(table, f'"{new}" = "{old}"', schema=schema, key=key,
                        where=f'"{new}" IS DISTINCT FROM "{old}"')


def revert_column_rename_expand(table: str, old: str, new: str, *, schema: str) -> None:
    """The expand step's downgrade: the trigger and `new` go, `old` (kept current) stays."""
    function = trigger = _sync_name(table, old, new)
    op.execute(f'DROP TRIGGER IF EXISTS "{trigger}" ON {_qualified(schema, table)}')
    op.execute(f"DROP FUNCTION IF EXISTS {_qualified(schema, function)}()")
    op.drop_column(table, new, schema=schema)


def contract_column_rename(table: str, old: str, new: str, *, schema: str) -> None:
    """Release N+2's migration, once no running release reads or writes `old`: the trigger
    and `old` go (dropping a column only rewrites the catalogue)."""
    function = trigger = _sync_name(table, old, new)
    squawk_exception("ban-drop-column",
                     "the contract step of a rename: the release that still used the old "
                     "column is gone, and its data lives on in the new one")
    op.execute(f'DROP TRIGGER IF EXISTS "{trigger}" ON {_qualified(schema, table)}')
    op.execute(f"DROP FUNCTION IF EXISTS {_qualified(schema, function)}()")
    op.drop_column(table, old, schema=schema)


# --- the messaging tables -------------------------------------------------------------------


def create_messaging_tables(schema: str) -> None:
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
        schema=schema,
    )
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"], schema=schema,
                    postgresql_where=sa.text("sent_at IS NOT NULL"))
    op.create_index("ix_outbox_unsent", "outbox", ["seq"], schema=schema,
                    postgresql_where=sa.text("sent_at IS NULL"))
    # Wake the relay at commit, once per inserting statement, whoever inserts.
    op.execute(f'''
        CREATE FUNCTION "{schema}".notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('outbox_{schema}', '');
            RETURN NULL;
        END $$''')
    op.execute(f'''
        CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
        FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".notify_outbox()''')
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox")),
        schema=schema,
    )
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"], schema=schema)
    op.create_table(
        "deleted_user",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_deleted_user")),
        schema=schema,
    )


def create_tombstone_notify(schema: str) -> None:
    """Announce each tombstone to the web processes (their in-memory deleted-user set) and
    index `deleted_at`, which bounds what they load."""
    squawk_exception("require-concurrent-index-creation",
                     "deleted_user gains a row per deleted user, rarely; a plain build locks "
                     "out those few writes for milliseconds, inside the revision's transaction")
    op.create_index("ix_deleted_user_deleted_at", "deleted_user", ["deleted_at"], schema=schema)
    op.execute(f'''
        CREATE FUNCTION "{schema}".notify_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tombstone_{schema}', NEW.user_id);
            RETURN NULL;
        END $$''')
    op.execute(f'''
        CREATE TRIGGER deleted_user_notify AFTER INSERT ON "{schema}".deleted_user
        FOR EACH ROW EXECUTE FUNCTION "{schema}".notify_tombstone()''')


def drop_tombstone_notify(schema: str) -> None:
    op.execute(f'DROP TRIGGER IF EXISTS deleted_user_notify ON "{schema}".deleted_user')
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".notify_tombstone()')
    op.drop_index("ix_deleted_user_deleted_at", "deleted_user", schema=schema)


def create_revoked_token(schema: str) -> None:
    """The table of access-token revocations (one row per user: the latest cutoff), announced
    to the web processes like tombstones: NOTIFY `revocation_<schema>` with
    "<user id> <cutoff as epoch seconds, to the microsecond>", at insert and at update."""
    op.create_table(
        "revoked_token",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_revoked_token")),
        schema=schema,
    )
    op.create_index("ix_revoked_token_revoked_at", "revoked_token", ["revoked_at"],
                    schema=schema)
    op.execute(f'''
        CREATE FUNCTION "{schema}".notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('revocation_{schema}',
                              NEW.user_id || ' ' || extract(epoch FROM NEW.revoked_at)::text);
            RETURN NULL;
        END $$''')
    op.execute(f'''
        CREATE TRIGGER revoked_token_notify AFTER INSERT OR UPDATE ON "{schema}".revoked_token
        FOR EACH ROW EXECUTE FUNCTION "{schema}".notify_revocation()''')


def drop_revoked_token(schema: str) -> None:
    op.drop_table("revoked_token", schema=schema)  # its trigger goes with it
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".notify_revocation()')


def create_resync(schema: str, read_models: Sequence[str] = ()) -> None:
    """What a resync needs (shared.resync): the outbox row's own routing key (NULL: its
    type, as every row before), the table of resyncs asked and answered, and on each of an
    asker's `read_models` when its row was last confirmed (`synced_at`; NULL: before)."""
    op.add_column("outbox", sa.Column("routing_key", sa.String(length=255), nullable=True),
                  schema=schema)
    for table in read_models:
        op.add_column(table, sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
                      schema=schema)
    op.create_table(
        "resync",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("asker", sa.String(length=32), nullable=False),
        sa.Column("producer", sa.String(length=32), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("cursor", sa.String(length=64), nullable=True),
        sa.Column("sent", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("removed", sa.BigInteger(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_resync")),
        schema=schema,
    )


def drop_resync(schema: str, read_models: Sequence[str] = ()) -> None:
    for table in read_models:
        op.drop_column(table, "synced_at", schema=schema)
    op.drop_table("resync", schema=schema)
    op.drop_column("outbox", "routing_key", schema=schema)


def drop_messaging_tables(schema: str) -> None:
    op.drop_table("deleted_user", schema=schema)
    op.drop_table("inbox", schema=schema)
    op.drop_table("outbox", schema=schema)
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".notify_outbox()')


def drop_enums(schema: str, *names: str) -> None:
    for name in names:
        sa.Enum(name=name, schema=schema).drop(op.get_bind(), checkfirst=True)
