"""Migration steps every service's first revision shares: its messaging tables.

Kept as plain Alembic operations (not generated from metadata at run time) so that a
revision, once written, means the same thing forever.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


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


def drop_messaging_tables(schema: str) -> None:
    op.drop_table("deleted_user", schema=schema)
    op.drop_table("inbox", schema=schema)
    op.drop_table("outbox", schema=schema)
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".notify_outbox()')


def drop_enums(schema: str, *names: str) -> None:
    for name in names:
        sa.Enum(name=name, schema=schema).drop(op.get_bind(), checkfirst=True)
