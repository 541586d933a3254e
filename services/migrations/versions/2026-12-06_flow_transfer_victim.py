"""A reported payment in a case's money flow names the victim who made it, by their own (paying) account:
each victim's payments into an account are reconciled, reported against listed by a bank from their own
accounts, per victim, and the victims' sums add up (one victim's payment no longer hides another's).

Two nullable columns. The rows recorded before name no victim, and are counted as before: per account, no
less than the reports naming none (the warnings' accounts are the notifier's, not read here).

Revision ID: 0022_flow_transfer_victim
Revises: 0021_officer_sessions
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_flow_transfer_victim"
down_revision: str | None = "0021_officer_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "flow_transfers",
        sa.Column(
            "victim_institution",
            sa.String(length=40),
            nullable=True,
            comment="a reported payment's victim: the institution of their own account, if named",
        ),
    )
    op.add_column(
        "flow_transfers",
        sa.Column(
            "victim_account",
            sa.String(length=34),
            nullable=True,
            comment="a reported payment's victim: their own (paying) account, if named",
        ),
    )


def downgrade() -> None:
    op.drop_column("flow_transfers", "victim_account")
    op.drop_column("flow_transfers", "victim_institution")
