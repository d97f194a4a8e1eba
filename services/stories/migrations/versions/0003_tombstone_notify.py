"""tombstones announced to web processes (NOTIFY) and indexed by deleted_at

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

from shared.migration_ops import create_tombstone_notify, drop_tombstone_notify

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_tombstone_notify("stories")


def downgrade() -> None:
    drop_tombstone_notify("stories")
