"""A listing may be renewed before it expires: an officer's proposal (`blocklist_renewals`) reviewed by a
second person; an approved one gives the entry a new expiry and `renewed_at`.

Entries from before have never been renewed.

Revision ID: 0020_blocklist_renewals
Revises: 0019_blocklist_entries_by_pages
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020_blocklist_renewals"
down_revision: str | None = "0019_blocklist_entries_by_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "blocklist_entries",
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=True, comment="its last renewal"),
    )
    op.create_table(
        "blocklist_renewals",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("entry_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("proposed_by", sa.String(length=120), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.String(length=120), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status in ('pending', 'approved', 'rejected')", name=op.f("ck_blocklist_renewals_status")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["blocklist_entries.id"],
            name=op.f("fk_blocklist_renewals_entry_id_blocklist_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocklist_renewals")),
    )
    op.create_index(op.f("ix_blocklist_renewals_entry_id"), "blocklist_renewals", ["entry_id"], unique=False)
    op.create_index(
        "uq_blocklist_renewals_pending_entry",
        "blocklist_renewals",
        ["entry_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("uq_blocklist_renewals_pending_entry", table_name="blocklist_renewals")
    op.drop_index(op.f("ix_blocklist_renewals_entry_id"), table_name="blocklist_renewals")
    op.drop_table("blocklist_renewals")
    op.drop_column("blocklist_entries", "renewed_at")
