"""access-token revocations (log out everywhere, password change or reset), announced to
web processes (NOTIFY)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

from shared.migration_ops import create_revoked_token, drop_revoked_token

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_revoked_token("goals")


def downgrade() -> None:
    drop_revoked_token("goals")
