"""post view version, withdrawn posts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("post_views", sa.Column("version", sa.Integer(), nullable=True),
                  schema="stories")
    op.create_table(
        "withdrawn_posts",
        sa.Column("post_id", sa.String(length=32), nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_withdrawn_posts")),
        schema="stories",
    )
    op.create_index("ix_withdrawn_posts_author_id", "withdrawn_posts", ["author_id"],
                    schema="stories")


def downgrade() -> None:
    op.drop_table("withdrawn_posts", schema="stories")
    op.drop_column("post_views", "version", schema="stories")
