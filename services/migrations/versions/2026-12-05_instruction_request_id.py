"""An instruction keeps the idempotency key its issuing client gave (`request_id`), unique: a request sent
twice (a double submit in the console, a client's retry after a timeout) issues one instruction.

Revision ID: 0011_instruction_request_id
Revises: 0010_outbox_publisher
Create Date: 2026-12-05 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_instruction_request_id"
down_revision: str | None = "0010_outbox_publisher"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "instructions",
        sa.Column(
            "request_id",
            postgresql.UUID(as_uuid=True),
            nullable=True,
            comment="the issuing client's idempotency key (its request_id), if it gave one",
        ),
    )
    op.create_index("uq_instructions_request_id", "instructions", ["request_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_instructions_request_id", table_name="instructions")
    op.drop_column("instructions", "request_id")
