"""The payments of a warning's alerts are kept with it (`citizen_warning_payments`): a revision of its alert
and an episode joined to it grow its amount at risk and name its newest payee, and a "defrauded" answer
drafts a stop-payment on every account the money went to, not on the first alert's alone.

Warnings from before have no rows; their first alert's payee and amount stand for it.

Revision ID: 0015_warning_payments
Revises: 0009_contact_operator
Create Date: 2026-12-05 21:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_warning_payments"
down_revision: str | None = "0009_contact_operator"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "citizen_warning_payments",
        sa.Column("warning_id", sa.UUID(), nullable=False),
        sa.Column("event_ref", sa.String(length=200), nullable=False, comment="institution:event_id"),
        sa.Column("amount", sa.Numeric(precision=15, scale=2), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payee_account", sa.String(length=34), nullable=True),
        sa.Column("payee_institution", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["citizen_warnings.id"],
            name=op.f("fk_citizen_warning_payments_warning_id_citizen_warnings"),
        ),
        sa.PrimaryKeyConstraint("warning_id", "event_ref", name=op.f("pk_citizen_warning_payments")),
    )


def downgrade() -> None:
    op.drop_table("citizen_warning_payments")
