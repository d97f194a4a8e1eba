"""initial stories schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 18:40:06.850708
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migration_ops import create_messaging_tables, drop_messaging_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables("stories")
    op.create_table(
        "stories",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stories")),
        sa.UniqueConstraint("user_id", "period", name=op.f("uq_stories_user_id_period")),
        schema="stories",
    )
    op.create_index("ix_stories_user_id_created_at_id", "stories",
                    ["user_id", "created_at", "id"], schema="stories")
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("current_role", sa.Text(), nullable=True),
        sa.Column("experience_level", sa.String(length=32), nullable=True),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.Column("years_of_experience", sa.Integer(), nullable=True),
        sa.Column("current_skills", postgresql.ARRAY(sa.Text()), server_default="{}",
                  nullable=False),
        sa.Column("target_skills", postgresql.ARRAY(sa.Text()), server_default="{}",
                  nullable=False),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("current_goals", postgresql.ARRAY(sa.Text()), server_default="{}",
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_profiles")),
        schema="stories",
    )
    op.create_table(
        "goal_views",
        sa.Column("goal_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("goal_id", name=op.f("pk_goal_views")),
        schema="stories",
    )
    op.create_index("ix_goal_views_user_id", "goal_views", ["user_id"], schema="stories")
    op.create_table(
        "deleted_goals",
        sa.Column("goal_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.PrimaryKeyConstraint("goal_id", name=op.f("pk_deleted_goals")),
        schema="stories",
    )
    op.create_index("ix_deleted_goals_user_id", "deleted_goals", ["user_id"], schema="stories")
    op.create_table(
        "post_views",
        sa.Column("post_id", sa.String(length=32), nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_post_views")),
        schema="stories",
    )
    op.create_index("ix_post_views_author_id", "post_views", ["author_id"], schema="stories")


def downgrade() -> None:
    op.drop_table("post_views", schema="stories")
    op.drop_table("deleted_goals", schema="stories")
    op.drop_table("goal_views", schema="stories")
    op.drop_table("profiles", schema="stories")
    op.drop_table("stories", schema="stories")
    drop_messaging_tables("stories")
