"""abuse limits: mails per address and per client, registrations per client

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "auth"


def upgrade() -> None:
    op.create_table(
        "rate_limit",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True),
                  server_default=sa.text("now()"), nullable=False),
        sa.Column("n", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_rate_limit")),
        schema=S,
    )
    op.create_index("ix_rate_limit_window_started_at", "rate_limit", ["window_started_at"],
                    schema=S)


def downgrade() -> None:
    op.drop_table("rate_limit", schema=S)
