"""tombstones announced to web processes (NOTIFY) and indexed by deleted_at

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

from shared.migration_ops import create_tombstone_notify, drop_tombstone_notify

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_tombstone_notify("goals")


def downgrade() -> None:
    drop_tombstone_notify("goals")
