"""`make lint` runs squawk over every revision's SQL; a finding fails it unless the revision
gives a reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.config import Config

from shared import migration_lint
from shared.migrate import alembic_config
from shared.migration_ops import squawk_exception

NEW_INDEX = '''"""add goal title index"""
from alembic import op

from shared.migration_ops import squawk_exception

revision = "0999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    {exception}
    op.create_index("ix_goals_title", "goals", ["title"], schema="goals")
'''


def test_every_existing_revision_passes_squawk_or_says_why() -> None:
    assert migration_lint.main([]) == 0


@pytest.fixture
def goals_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Goals' migrations, copied, so a test can add a revision the lint finds by itself."""
    copy = tmp_path / "migrations"
    shutil.copytree(alembic_config("goals").get_main_option("script_location") or "", copy,
                    ignore=shutil.ignore_patterns("__pycache__"))

    def config(service: str, url: str | None = None) -> Config:
        found = alembic_config(service, url)
        found.set_main_option("script_location", str(copy))
        return found

    monkeypatch.setattr(migration_lint, "alembic_config", config)
    return copy


def head_of(copy: Path) -> str:
    return max(p.name[:4] for p in (copy / "versions").glob("0*.py"))


def test_a_new_revision_with_a_finding_fails_until_it_gives_a_reason(
        goals_copy: Path, tmp_path: Path) -> None:
    head = head_of(goals_copy)
    revision = goals_copy / "versions" / "0999_add_goal_title_index.py"
    revision.write_text(NEW_INDEX.format(head=head, exception="pass"))
    findings, _ = migration_lint.lint_service("goals", tmp_path)
    assert [(f.revision, f.rule) for f in findings] == [
        ("0999", "require-concurrent-index-creation")]

    reason = ('squawk_exception("require-concurrent-index-creation", '
              '"goals is tiny in every deployment so far, a test says so")')
    revision.write_text(NEW_INDEX.format(head=head, exception=reason))
    findings, _ = migration_lint.lint_service("goals", tmp_path)
    assert findings == []


def test_an_exception_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="say why"):
        squawk_exception("ban-drop-column", "ok")
