"""An entry's proposers (`blocklist_proposers`): its first proposer and everyone whose proposal joined it,
none of whom may review it or decide an appeal against it.

Filled from what was recorded before: each entry's `proposed_by`, and the officer of each
`blocklist.proposal_joined` in the audit log.

Revision ID: 0018_blocklist_proposers
Revises: 0017_warning_desk_defrauded
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018_blocklist_proposers"
down_revision: str | None = "0017_warning_desk_defrauded"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blocklist_proposers",
        sa.Column("entry_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, comment="of their first proposal of it"),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["blocklist_entries.id"],
            name=op.f("fk_blocklist_proposers_entry_id_blocklist_entries"),
        ),
        sa.PrimaryKeyConstraint("entry_id", "subject", name=op.f("pk_blocklist_proposers")),
    )
    op.execute(
        "insert into blocklist_proposers (entry_id, subject, at)"
        " select id, proposed_by, proposed_at from blocklist_entries"
    )
    op.execute(
        "insert into blocklist_proposers (entry_id, subject, at)"
        " select entity_id::uuid, actor, min(at) from audit_log"
        " where entity_type = 'blocklist_entry' and action = 'blocklist.proposal_joined'"
        " group by entity_id, actor"
        " on conflict do nothing"
    )


def downgrade() -> None:
    op.drop_table("blocklist_proposers")
