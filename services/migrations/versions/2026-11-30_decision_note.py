"""A supervisor's note on declining an instruction is kept on the instruction (and in the audit log).

On the coordination branch: one nullable column of the instructions table.

Revision ID: 0006_decision_note
Revises: 0005_alert_episodes
Create Date: 2026-11-30 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_decision_note"
down_revision: str | None = "0005_alert_episodes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "instructions",
        sa.Column("decision_note", sa.Text(), nullable=True, comment="the supervisor's note on declining"),
    )


def downgrade() -> None:
    op.drop_column("instructions", "decision_note")
