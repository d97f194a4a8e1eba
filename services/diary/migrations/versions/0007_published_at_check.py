"""a published post has its published_at and a draft none: a check constraint, added
NOT VALID and validated in a transaction of its own (writes to posts go on meanwhile)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

from alembic import op

from shared.migration_ops import squawk_exception

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ck_posts_published_at_iff_published"


def upgrade() -> None:
    squawk_exception("ban-drop-constraint",
                     "the drop removes only this revision's own constraint left NOT VALID by "
                     "a failed earlier attempt, so a rerun starts clean; no guarantee that "
                     "clients rely on is dropped")
    with op.get_context().autocommit_block():
        # NOT VALID takes the table's lock only for a moment and checks new rows only;
        # VALIDATE then checks the existing rows under a lock that lets writes through.
        op.execute(f"ALTER TABLE diary.posts DROP CONSTRAINT IF EXISTS {NAME}")
        op.execute(f"ALTER TABLE diary.posts ADD CONSTRAINT {NAME} "
                   "CHECK ((status = 'PUBLISHED') = (published_at IS NOT NULL)) NOT VALID")
        op.execute(f"ALTER TABLE diary.posts VALIDATE CONSTRAINT {NAME}")


def downgrade() -> None:
    op.execute(f"ALTER TABLE diary.posts DROP CONSTRAINT IF EXISTS {NAME}")
