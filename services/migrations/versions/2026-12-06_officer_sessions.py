"""Officers' console sessions, so that a sign-out, or an administrator, ends one at once on every console
instance. A new table; no existing one changes.

Revision ID: 0021_officer_sessions
Revises: 0014_flow_transfer_ref_account
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_officer_sessions"
down_revision: str | None = "0014_flow_transfer_ref_account"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "officer_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False, comment="the officer's `sub`"),
        sa.Column("unit", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_officer_sessions")),
    )
    op.create_index("ix_officer_sessions_subject", "officer_sessions", ["subject"], unique=False)
    op.create_index("ix_officer_sessions_expires_at", "officer_sessions", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_officer_sessions_expires_at", table_name="officer_sessions")
    op.drop_index("ix_officer_sessions_subject", table_name="officer_sessions")
    op.drop_table("officer_sessions")
