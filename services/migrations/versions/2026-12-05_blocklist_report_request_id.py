"""A telecom's report keeps the idempotency key the telecom gave (`request_id`), unique per telecom: a
report sent again after a timeout counts once.

On the warnings and blocklist branch. Reports made before have no key.

Revision ID: 0016_blocklist_report_request_id
Revises: 0015_warning_payments
Create Date: 2026-12-05 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016_blocklist_report_request_id"
down_revision: str | None = "0015_warning_payments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "blocklist_reports",
        sa.Column(
            "request_id",
            postgresql.UUID(as_uuid=True),
            nullable=True,
            comment="the telecom's idempotency key (its request_id), if it gave one",
        ),
    )
    op.create_index(
        "uq_blocklist_reports_request", "blocklist_reports", ["institution_id", "request_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_blocklist_reports_request", table_name="blocklist_reports")
    op.drop_column("blocklist_reports", "request_id")
