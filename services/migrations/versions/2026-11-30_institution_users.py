"""Institution users (people who answer instructions in the console) and their sessions.

On the institutions branch: it adds two tables and changes no existing one.

Revision ID: 0005_institution_users
Revises: 0001_foundation
Create Date: 2026-11-30 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_institution_users"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "institution_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("institution_id", sa.String(length=40), nullable=False),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_institution_users_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_institution_users")),
        sa.UniqueConstraint(
            "institution_id", "username", name=op.f("uq_institution_users_institution_id_username")
        ),
    )
    op.create_table(
        "institution_sessions",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["institution_users.id"],
            name=op.f("fk_institution_sessions_user_id_institution_users"),
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_institution_sessions")),
    )
    op.create_index(
        op.f("ix_institution_sessions_user_id"), "institution_sessions", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_institution_sessions_user_id"), table_name="institution_sessions")
    op.drop_table("institution_sessions")
    op.drop_table("institution_users")
