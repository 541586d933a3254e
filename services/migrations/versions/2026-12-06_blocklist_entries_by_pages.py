"""The officers' list of blocklist entries comes by pages, newest first, keyed on (proposed_at, id): an
index on the two.

Revision ID: 0019_blocklist_entries_by_pages
Revises: 0018_blocklist_proposers
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_blocklist_entries_by_pages"
down_revision: str | None = "0018_blocklist_proposers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_blocklist_entries_proposed_id", "blocklist_entries", ["proposed_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_blocklist_entries_proposed_id", table_name="blocklist_entries")
