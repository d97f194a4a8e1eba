"""initial goals schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 18:33:57.839177
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_messaging_tables, drop_enums, drop_messaging_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERIODS = ("DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY")


def upgrade() -> None:
    create_messaging_tables("goals")
    op.create_table(
        "goals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("period", sa.Enum(*PERIODS, name="goal_period", schema="goals"),
                  nullable=False),
        sa.Column("status", sa.Enum("ACTIVE", "COMPLETED", name="goal_status", schema="goals"),
                  server_default="ACTIVE", nullable=False),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goals")),
        schema="goals",
    )
    op.create_index("ix_goals_user_id_status", "goals", ["user_id", "status"], schema="goals")
    op.create_index("ix_goals_user_id_period", "goals", ["user_id", "period"], schema="goals")
    op.create_index("ix_goals_user_id_created_at_id", "goals", ["user_id", "created_at", "id"],
                    schema="goals")


def downgrade() -> None:
    op.drop_table("goals", schema="goals")
    drop_enums("goals", "goal_period", "goal_status")
    drop_messaging_tables("goals")
