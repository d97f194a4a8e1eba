"""accounts.expires_at as a 64-bit integer: an OAuth expiry in Unix seconds past 2038 fits

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import squawk_exception

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "auth"


def upgrade() -> None:
    squawk_exception("changing-column-type",
                     "accounts holds one row per linked OAuth account, so the rewrite under "
                     "ACCESS EXCLUSIVE takes milliseconds; an expand/contract copy would "
                     "cost three deploys for no shorter lock, and no client reads the column "
                     "but auth's adapter, which writes 64-bit values from this release on")
    op.alter_column("accounts", "expires_at", type_=sa.BigInteger(),
                    existing_type=sa.Integer(), schema=S)


def downgrade() -> None:
    op.alter_column("accounts", "expires_at", type_=sa.Integer(),
                    existing_type=sa.BigInteger(), schema=S)
