"""Citizen contacts record the operator that owns the number: only it may change the push id and language.

Revision ID: 0009_contact_operator
Revises: 0008_mule_accounts
Create Date: 2026-11-30 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_contact_operator"
down_revision: str | None = "0008_mule_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "citizen_contacts",
        sa.Column(
            "operator",
            sa.String(length=40),
            nullable=True,
            comment="the telecom operator the number is with; only it sets the contact",
        ),
    )
    # Until now the last writer was the only record of who reported the subscriber.
    op.execute("update citizen_contacts set operator = updated_by")
    op.alter_column("citizen_contacts", "operator", nullable=False)


def downgrade() -> None:
    op.drop_column("citizen_contacts", "operator")
