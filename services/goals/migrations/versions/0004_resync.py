"""resyncs (shared.resync): the outbox row's routing key and the table of resyncs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 14:45:00
"""

from collections.abc import Sequence

from shared.migration_ops import create_resync, drop_resync

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_resync("goals")


def downgrade() -> None:
    drop_resync("goals")
