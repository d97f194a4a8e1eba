"""initial auth schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 18:38:54.957036
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import SchemaItem

from shared.migration_ops import create_messaging_tables, drop_enums, drop_messaging_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "auth"
LEVELS = ("INTERN", "JUNIOR", "MID_LEVEL", "SENIOR", "LEAD", "MANAGER", "DIRECTOR", "VP",
          "C_LEVEL")
PERIODS = ("DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY")
OWNED = ("accounts", "sessions", "password_resets", "achievement_awards")


def _now() -> sa.TextClause:
    return sa.text("now()")


def _text_list(name: str) -> sa.Column:
    return sa.Column(name, postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"),
                     nullable=False)


def _owner(table: str) -> list[SchemaItem]:
    """user_id -> users.id ON DELETE CASCADE (the seed's onDelete: Cascade)."""
    return [
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], [f"{S}.users.id"], ondelete="CASCADE",
                                name=op.f(f"fk_{table}_user_id_users")),
    ]


def upgrade() -> None:
    create_messaging_tables(S)
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("verified", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("email_verified", sa.DateTime(timezone=True), nullable=True),
        sa.Column("image", sa.Text(), nullable=True),
        sa.Column("current_role", sa.Text(), nullable=True),
        sa.Column("experience_level", sa.Enum(*LEVELS, name="experience_level", schema=S),
                  server_default="JUNIOR", nullable=False),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.Column("years_of_experience", sa.Integer(), nullable=True),
        _text_list("current_skills"),
        _text_list("target_skills"),
        sa.Column("bio", sa.Text(), nullable=True),
        _text_list("current_goals"),
        sa.Column("achievement_score", sa.Integer(), server_default="0", nullable=False),
        sa.Column("daily_generation_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_generation_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        schema=S,
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_owner("accounts"),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("provider_account_id", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.Integer(), nullable=True),
        sa.Column("token_type", sa.Text(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("id_token", sa.Text(), nullable=True),
        sa.Column("session_state", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("provider", "provider_account_id",
                            name=op.f("uq_accounts_provider_provider_account_id")),
        schema=S,
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("session_token", sa.String(length=64), nullable=False),
        *_owner("sessions"),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("session_token", name=op.f("uq_sessions_session_token")),
        schema=S,
    )
    op.create_table(
        "verification_tokens",
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identifier", "token", name=op.f("pk_verification_tokens")),
        sa.UniqueConstraint("token", name=op.f("uq_verification_tokens_token")),
        schema=S,
    )
    op.create_table(
        "password_resets",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_owner("password_resets"),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token", name=op.f("uq_password_resets_token")),
        schema=S,
    )
    op.create_table(
        "achievement_awards",
        sa.Column("goal_id", sa.String(length=32), nullable=False),
        *_owner("achievement_awards"),
        sa.Column("period", sa.Enum(*PERIODS, name="goal_period", schema=S), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("awarded", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("goal_id", name=op.f("pk_achievement_awards")),
        schema=S,
    )
    for table in OWNED:
        op.create_index(op.f(f"ix_{table}_user_id"), table, ["user_id"], schema=S)
    # The score follows the ledger inside the same statement: every insert or change of an
    # award row moves its user's score by exactly the points it adds or withdraws.
    op.execute(f'''
        CREATE FUNCTION {S}.follow_award() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            delta integer := CASE WHEN NEW.awarded THEN NEW.points ELSE 0 END;
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                delta := delta - CASE WHEN OLD.awarded THEN OLD.points ELSE 0 END;
            END IF;
            IF delta <> 0 THEN
                UPDATE {S}.users SET achievement_score = achievement_score + delta
                WHERE id = NEW.user_id;
            END IF;
            RETURN NULL;
        END $$''')
    op.execute(f'''
        CREATE TRIGGER achievement_awards_score AFTER INSERT OR UPDATE ON {S}.achievement_awards
        FOR EACH ROW EXECUTE FUNCTION {S}.follow_award()''')


def downgrade() -> None:
    for table in reversed(OWNED):
        op.drop_table(table, schema=S)
    op.execute(f"DROP FUNCTION IF EXISTS {S}.follow_award()")
    op.drop_table("verification_tokens", schema=S)
    op.drop_table("users", schema=S)
    drop_enums(S, "experience_level", "goal_period")
    drop_messaging_tables(S)
