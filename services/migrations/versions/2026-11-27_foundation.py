"""Foundation: institutions, API credentials, de-duplication ledger, alerts.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-27 09:41:28.932699
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("typology", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="new", nullable=False),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("recommended_actions", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("subject", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("triggering_event_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("amount_at_risk", sa.Numeric(precision=15, scale=2), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("scorer_version", sa.String(length=64), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_changed_by", sa.String(length=120), nullable=True),
        sa.CheckConstraint(
            "status in ('new', 'triaged', 'dismissed', 'escalated')", name=op.f("ck_alerts_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_received_id", "alerts", ["received_at", "id"], unique=False)
    op.create_index("ix_alerts_status_received", "alerts", ["status", "received_at"], unique=False)
    op.create_index(op.f("ix_alerts_typology"), "alerts", ["typology"], unique=False)
    op.create_table(
        "institutions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind in ('telecom', 'bank', 'payment')", name=op.f("ck_institutions_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_institutions")),
    )
    op.create_table(
        "alert_status_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.UUID(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor_unit", sa.String(length=120), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_status_changes_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_status_changes")),
    )
    op.create_index(
        op.f("ix_alert_status_changes_alert_id"), "alert_status_changes", ["alert_id"], unique=False
    )
    op.create_table(
        "api_credentials",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("institution_id", sa.String(length=40), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_api_credentials_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_credentials")),
    )
    op.create_index(
        op.f("ix_api_credentials_institution_id"), "api_credentials", ["institution_id"], unique=False
    )
    op.create_table(
        "ingested_events",
        sa.Column("institution_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_ingested_events_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("institution_id", "event_id", name=op.f("pk_ingested_events")),
    )
    op.create_index(op.f("ix_ingested_events_received_at"), "ingested_events", ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_ingested_events_received_at"), table_name="ingested_events")
    op.drop_table("ingested_events")
    op.drop_index(op.f("ix_api_credentials_institution_id"), table_name="api_credentials")
    op.drop_table("api_credentials")
    op.drop_index(op.f("ix_alert_status_changes_alert_id"), table_name="alert_status_changes")
    op.drop_table("alert_status_changes")
    op.drop_table("institutions")
    op.drop_index(op.f("ix_alerts_typology"), table_name="alerts")
    op.drop_index("ix_alerts_status_received", table_name="alerts")
    op.drop_index("ix_alerts_received_id", table_name="alerts")
    op.drop_table("alerts")
