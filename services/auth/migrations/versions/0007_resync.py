"""resyncs (shared.resync): the outbox row's routing key and the table of resyncs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:45:00
"""

from collections.abc import Sequence

from shared.migration_ops import create_resync, drop_resync

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_resync("auth")


def downgrade() -> None:
    drop_resync("auth")
