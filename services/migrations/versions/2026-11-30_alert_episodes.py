"""One alert per scam episode: alerts keep their revision (later payments of the episode update the alert),
the episode's payments, the incident they belong to (the collection account their money went to) and
the scam typology the model predicts.

On the coordination branch. Alerts stored before are revision 1 of an incident nobody named.

Revision ID: 0005_alert_episodes
Revises: 0004_feedback
Create Date: 2026-11-30 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_alert_episodes"
down_revision: str | None = "0004_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
    op.create_check_constraint(op.f("ck_alerts_revision"), "alerts", "revision >= 1")
    op.add_column("alerts", sa.Column("incident_id", postgresql.UUID(as_uuid=True), nullable=True))
    op.create_index(op.f("ix_alerts_incident_id"), "alerts", ["incident_id"])
    op.add_column(
        "alerts",
        sa.Column("payments", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
    )
    op.add_column("alerts", sa.Column("scam_typology", sa.String(length=40), nullable=True))
    op.add_column("alerts", sa.Column("scam_typology_score", sa.Float(), nullable=True))
    op.add_column(
        "alerts",
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when a later revision last changed it",
        ),
    )


def downgrade() -> None:
    op.drop_column("alerts", "updated_at")
    op.drop_column("alerts", "scam_typology_score")
    op.drop_column("alerts", "scam_typology")
    op.drop_column("alerts", "payments")
    op.drop_index(op.f("ix_alerts_incident_id"), table_name="alerts")
    op.drop_column("alerts", "incident_id")
    op.drop_constraint(op.f("ck_alerts_revision"), "alerts", type_="check")
    op.drop_column("alerts", "revision")
