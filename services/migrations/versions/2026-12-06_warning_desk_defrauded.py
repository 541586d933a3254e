"""A warning keeps when the phone desk heard from the person that they are being defrauded
(`desk_defrauded_at`): with nothing at risk yet there is no case to open, and a payment joining the warning
later must still have its stop drafted, as after the person's own "defrauded" answer.

Warnings from before have none; the desk's word on those without a case is not known (the audit log's
`desk.closed` does not record it).

Revision ID: 0017_warning_desk_defrauded
Revises: 0016_blocklist_report_request_id
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_warning_desk_defrauded"
down_revision: str | None = "0016_blocklist_report_request_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "citizen_warnings",
        sa.Column(
            "desk_defrauded_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when the phone desk first heard from the person that they are being defrauded",
        ),
    )


def downgrade() -> None:
    op.drop_column("citizen_warnings", "desk_defrauded_at")
