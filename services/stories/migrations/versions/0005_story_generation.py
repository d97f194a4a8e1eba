"""stories written by the worker: period span, status, error, generation bookkeeping, and
the per-user daily generation count

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import squawk_exception

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The period ids of stories stored before this revision, as SQL (no service code imported
# into a migration): kind, start and exclusive end of each.
_BACKFILL = """
UPDATE stories.stories SET
  period_kind = CASE
    WHEN period ~ '^[0-9]{4}$' THEN 'YEAR'
    WHEN period ~ '^[0-9]{4}-Q[1-4]$' THEN 'QUARTER'
    WHEN period ~ '^[0-9]{4}-W[0-9]{2}$' THEN 'WEEK'
    WHEN period ~ '^[0-9]{4}-[0-9]{2}$' THEN 'MONTH'
    ELSE 'DAY' END,
  period_start = CASE
    WHEN period ~ '^[0-9]{4}$' THEN to_date(period, 'YYYY')
    WHEN period ~ '^[0-9]{4}-Q[1-4]$' THEN make_date(substr(period, 1, 4)::int,
                                             3 * substr(period, 7, 1)::int - 2, 1)
    WHEN period ~ '^[0-9]{4}-W[0-9]{2}$' THEN to_date(period, 'IYYY-"W"IW')
    WHEN period ~ '^[0-9]{4}-[0-9]{2}$' THEN to_date(period, 'YYYY-MM')
    ELSE to_date(period, 'YYYY-MM-DD') END::timestamp AT TIME ZONE 'UTC',
  status = 'READY',
  generated_at = created_at
"""


def upgrade() -> None:
    # Before this release nothing could write a story (the service only listed them), so
    # stories.stories has no rows anywhere: these steps lock an empty table for an instant.
    empty = ("stories.stories is empty in every deployment before this release (no route or "
             "worker wrote stories), so the table scan and the lock last no time")
    squawk_exception("adding-not-nullable-field", empty)
    squawk_exception("require-concurrent-index-creation", empty)
    squawk_exception("ban-drop-not-null", "content becomes nullable because a story is now "
                     "written after it is asked for (PENDING has no content yet); no client "
                     "relied on it, none could read a story without one before")
    for name, type_ in (("period_kind", sa.String(length=8)),
                        ("period_start", sa.DateTime(timezone=True)),
                        ("period_end", sa.DateTime(timezone=True)),
                        ("status", sa.String(length=16)),
                        ("error", sa.Text()),
                        ("generated_at", sa.DateTime(timezone=True)),
                        ("generation_id", sa.String(length=32)),
                        ("requested_at", sa.DateTime(timezone=True)),
                        ("admitted_on", sa.Date())):
        op.add_column("stories", sa.Column(name, type_, nullable=True), schema="stories")
    op.execute(_BACKFILL)
    op.execute("""
        UPDATE stories.stories SET period_end = period_start + CASE period_kind
            WHEN 'YEAR' THEN interval '1 year' WHEN 'QUARTER' THEN interval '3 months'
            WHEN 'MONTH' THEN interval '1 month' WHEN 'WEEK' THEN interval '7 days'
            ELSE interval '1 day' END""")
    for name in ("period_kind", "period_start", "period_end", "status"):
        op.alter_column("stories", name, nullable=False, schema="stories")
    op.alter_column("stories", "content", nullable=True, schema="stories")
    op.create_index("ix_stories_requested_at_pending", "stories", ["requested_at"],
                    schema="stories", postgresql_where=sa.text("status = 'PENDING'"))
    op.create_table(
        "generation_counts",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_generation_counts")),
        schema="stories",
    )


def downgrade() -> None:
    op.drop_table("generation_counts", schema="stories")
    op.drop_index("ix_stories_requested_at_pending", "stories", schema="stories")
    op.execute("DELETE FROM stories.stories WHERE content IS NULL")
    op.alter_column("stories", "content", nullable=False, schema="stories")
    for name in ("admitted_on", "requested_at", "generation_id", "generated_at", "error",
                 "status", "period_end", "period_start", "period_kind"):
        op.drop_column("stories", name, schema="stories")
