"""indexes for the feed, a user's page and a post's likes, built CONCURRENTLY

Built without blocking writes to posts and likes. A failed earlier attempt leaves an
INVALID index behind, which `IF NOT EXISTS` would take for done: it is dropped first (online
when found invalid; the offline script, `--sql`, always drops, then builds).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:45:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {  # name -> what follows "ON"
    "ix_posts_published_at_id":
        "diary.posts (published_at, id) WHERE status = 'PUBLISHED'",
    "ix_posts_author_id_created_at_id": "diary.posts (author_id, created_at, id)",
    "ix_likes_post_id_created_at_id": "diary.likes (post_id, created_at, id)",
}

INVALID = """
    SELECT 1 FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'diary' AND c.relname = :name AND NOT i.indisvalid
"""


def upgrade() -> None:
    context = op.get_context()
    with context.autocommit_block():
        for name, target in INDEXES.items():
            if context.as_sql or op.get_bind().execute(text(INVALID), {"name": name}).first():
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS diary.{name}")
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {target}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS diary.{name}")
