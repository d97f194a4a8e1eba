"""resyncs (shared.resync): the outbox row's routing key and the table of resyncs,
and when each read-model row was last confirmed by an event (synced_at: at a resync's end
the rows that no snapshot or live event confirmed since it was asked are removed)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:45:00
"""

from collections.abc import Sequence

from shared.migration_ops import create_resync, drop_resync

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


READ_MODELS = ("goal_views", "post_views", "profiles")


def upgrade() -> None:
    create_resync("stories", READ_MODELS)


def downgrade() -> None:
    drop_resync("stories", READ_MODELS)
