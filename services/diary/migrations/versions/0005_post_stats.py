"""post_stats: each post's like and reply counters, filled from the rows there are

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "post_stats",
        sa.Column("post_id", sa.String(length=32), nullable=False),
        sa.Column("like_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reply_count", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["diary.posts.id"],
                                name=op.f("fk_post_stats_post_id_posts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_post_stats")),
        schema="diary",
    )
    # Every existing post gets its row, with the counts of the rows it has.
    op.execute("""
        INSERT INTO diary.post_stats (post_id, like_count, reply_count)
        SELECT p.id,
               (SELECT count(*) FROM diary.likes l WHERE l.post_id = p.id),
               (SELECT count(*) FROM diary.replies r WHERE r.post_id = p.id)
        FROM diary.posts p
    """)




def downgrade() -> None:
    op.drop_table("post_stats", schema="diary")
