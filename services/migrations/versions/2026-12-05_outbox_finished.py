"""The outbox is pruned: messages delivered or given up longer ago than the retention are removed, the
oldest first, found by a partial index of the finished rows by when they were queued (the pending rows have
their own).

Built CONCURRENTLY, outside the migration's transaction: on an outbox that grew for months, a plain
CREATE INDEX would hold up every relay and every instruction issued while it reads the table.

Revision ID: 0012_outbox_finished
Revises: 0011_instruction_request_id
Create Date: 2026-12-05 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_outbox_finished"
down_revision: str | None = "0011_instruction_request_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = sa.text("sent_at is not null or dead_at is not null")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_outbox_finished",
            "outbox",
            ["created_at"],
            unique=False,
            postgresql_where=FINISHED,
            postgresql_concurrently=True,
            if_not_exists=True,  # (a build cut short leaves an invalid index: drop it, then upgrade again)
        )


def downgrade() -> None:
    op.drop_index("ix_outbox_finished", table_name="outbox")
