"""Feedback for training: alerts keep the model's input (features and their feature-set hash), and a
closed case records its outcome (confirmed fraud, false alarm, undetermined).

On the coordination branch: it changes only coordination tables. Old alerts keep null features
(models.feedback leaves them out); cases closed before get the outcome `undetermined` (nobody stated
one; like any undetermined case it labels no alert by itself), so that every closed case has an
outcome and no open one has: a CHECK constraint holds that from then on.

Revision ID: 0004_feedback
Revises: 0002_coordination
Create Date: 2026-11-27 12:16:33.906314
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_feedback"
down_revision: str | None = "0002_coordination"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("features", postgresql.ARRAY(sa.Float()), nullable=True))
    op.add_column("alerts", sa.Column("feature_set", sa.String(length=16), nullable=True))
    op.add_column(
        "cases",
        sa.Column("outcome", sa.String(length=16), nullable=True, comment="set on closing; null while open"),
    )
    op.create_check_constraint(
        op.f("ck_cases_outcome"),
        "cases",
        "outcome is null or outcome in ('confirmed_fraud', 'false_alarm', 'undetermined')",
    )
    op.execute("update cases set outcome = 'undetermined' where status = 'closed'")
    op.create_check_constraint(
        op.f("ck_cases_outcome_when_closed"), "cases", "(status = 'closed') = (outcome is not null)"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_cases_outcome_when_closed"), "cases", type_="check")
    op.drop_constraint(op.f("ck_cases_outcome"), "cases", type_="check")
    op.drop_column("cases", "outcome")
    op.drop_column("alerts", "feature_set")
    op.drop_column("alerts", "features")
