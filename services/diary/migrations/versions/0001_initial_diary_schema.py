"""initial diary schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 18:38:55.683962
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migration_ops import create_messaging_tables, drop_enums, drop_messaging_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables("diary")
    op.create_table(
        "posts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("status", sa.Enum("DRAFT", "PUBLISHED", name="post_status", schema="diary"),
                  server_default="DRAFT", nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
        schema="diary",
    )
    op.create_index("ix_posts_author_id_status", "posts", ["author_id", "status"],
                    schema="diary")
    op.create_index("ix_posts_status_created_at", "posts", ["status", "created_at"],
                    schema="diary")
    op.create_index("ix_posts_created_at", "posts", ["created_at"], schema="diary")
    op.create_table(
        "likes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("post_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["diary.posts.id"],
                                name=op.f("fk_likes_post_id_posts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_likes")),
        sa.UniqueConstraint("user_id", "post_id", name=op.f("uq_likes_user_id_post_id")),
        schema="diary",
    )
    op.create_index("ix_likes_post_id", "likes", ["post_id"], schema="diary")
    op.create_table(
        "replies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=False),
        sa.Column("post_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["diary.posts.id"],
                                name=op.f("fk_replies_post_id_posts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replies")),
        schema="diary",
    )
    op.create_index("ix_replies_post_id_created_at", "replies", ["post_id", "created_at"],
                    schema="diary")
    op.create_index("ix_replies_author_id", "replies", ["author_id"], schema="diary")
    op.create_table(
        "authors",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("image", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_authors")),
        schema="diary",
    )


def downgrade() -> None:
    op.drop_table("authors", schema="diary")
    op.drop_table("replies", schema="diary")
    op.drop_table("likes", schema="diary")
    op.drop_table("posts", schema="diary")
    drop_enums("diary", "post_status")
    drop_messaging_tables("diary")
