"""Citizen warnings (deliveries, phone desk, contacts) and the fraud-number blocklist.

Branches from the foundation; no foreign key reaches the coordination tables (a warning's case id
is a plain column). Blocklist changes are audited in the coordination audit log at run time.

Revision ID: 0003_warnings
Revises: 0001_foundation
Create Date: 2026-11-27 09:51:06.998202
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_warnings"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
# The blocklist writes its changes to the coordination audit log.
depends_on: str | Sequence[str] | None = "0002_coordination"


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("blocklist_version_seq")))
    op.create_table(
        "blocklist_entries",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=True, comment="coordination case"),
        sa.Column("reports", sa.Integer(), server_default="0", nullable=False),
        sa.Column("proposed_by", sa.String(length=120), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.String(length=120), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=True, comment="of its last published change"),
        sa.CheckConstraint(
            "source in ('case', 'telecom_report', 'operator')", name=op.f("ck_blocklist_entries_source")
        ),
        sa.CheckConstraint(
            "status in ('proposed', 'active', 'rejected', 'expired', 'removed')",
            name=op.f("ck_blocklist_entries_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocklist_entries")),
    )
    op.create_index(
        "ix_blocklist_entries_active_expiry",
        "blocklist_entries",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_blocklist_entries_version", "blocklist_entries", ["version"], unique=False)
    op.create_index(
        "uq_blocklist_entries_live_number",
        "blocklist_entries",
        ["number"],
        unique=True,
        postgresql_where=sa.text("status in ('proposed', 'active')"),
    )
    op.create_table(
        "blocklist_feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_blocklist_feed_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocklist_feed")),
    )
    op.create_table(
        "citizen_contacts",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("language", sa.String(length=4), nullable=False),
        sa.Column("push_id", sa.String(length=200), nullable=True),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("language in ('zh', 'ug', 'kk')", name=op.f("ck_citizen_contacts_language")),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_citizen_contacts")),
    )
    op.create_table(
        "citizen_warnings",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "person", sa.String(length=40), nullable=False, comment="keyed pseudonym of the phone number"
        ),
        sa.Column(
            "episode",
            sa.String(length=200),
            nullable=False,
            comment="the scam call (event ref) the alerts share",
        ),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("language", sa.String(length=4), nullable=False),
        sa.Column("typology", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("amount_at_risk", sa.Numeric(precision=15, scale=2), nullable=True),
        sa.Column("account", sa.String(length=34), nullable=True, comment="the victim's paying account"),
        sa.Column("institution", sa.String(length=40), nullable=True),
        sa.Column("payee_account", sa.String(length=34), nullable=True, comment="where the money went"),
        sa.Column("payee_institution", sa.String(length=40), nullable=True),
        sa.Column("first_alert_id", sa.UUID(), nullable=False),
        sa.Column(
            "event_time", sa.DateTime(timezone=True), nullable=False, comment="of the triggering event"
        ),
        sa.Column("status", sa.String(length=12), server_default="open", nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.String(length=12), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("first_delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "case_id",
            sa.UUID(),
            nullable=True,
            comment="the coordination case opened from a 'defrauded' answer",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "answer is null or answer in ('safe', 'defrauded')", name=op.f("ck_citizen_warnings_answer")
        ),
        sa.CheckConstraint(
            "outcome is null or outcome in ('dissuaded', 'reached_too_late', 'not_reached')",
            name=op.f("ck_citizen_warnings_outcome"),
        ),
        sa.CheckConstraint(
            "status in ('open', 'answered', 'closed')", name=op.f("ck_citizen_warnings_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizen_warnings")),
        sa.UniqueConstraint("episode", "person", name=op.f("uq_citizen_warnings_episode_person")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_citizen_warnings_token_sha256")),
    )
    op.create_index(
        "ix_citizen_warnings_person_created", "citizen_warnings", ["person", "created_at"], unique=False
    )
    op.create_index(
        "ix_citizen_warnings_status_created", "citizen_warnings", ["status", "created_at"], unique=False
    )
    op.create_table(
        "blocklist_appeals",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("entry_id", sa.UUID(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("filed_by", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("decided_by", sa.String(length=120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status in ('pending', 'upheld', 'dismissed')", name=op.f("ck_blocklist_appeals_status")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["blocklist_entries.id"],
            name=op.f("fk_blocklist_appeals_entry_id_blocklist_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocklist_appeals")),
    )
    op.create_index(op.f("ix_blocklist_appeals_entry_id"), "blocklist_appeals", ["entry_id"], unique=False)
    op.create_index(
        "uq_blocklist_appeals_pending_entry",
        "blocklist_appeals",
        ["entry_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "blocklist_reports",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.UUID(), nullable=False),
        sa.Column("institution_id", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["blocklist_entries.id"],
            name=op.f("fk_blocklist_reports_entry_id_blocklist_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocklist_reports")),
    )
    op.create_index(op.f("ix_blocklist_reports_entry_id"), "blocklist_reports", ["entry_id"], unique=False)
    op.create_table(
        "citizen_warning_alerts",
        sa.Column("alert_id", sa.UUID(), nullable=False),
        sa.Column("warning_id", sa.UUID(), nullable=False),
        sa.Column("joined", sa.String(length=12), nullable=False, comment="created, episode or rate_limit"),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["citizen_warnings.id"],
            name=op.f("fk_citizen_warning_alerts_warning_id_citizen_warnings"),
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_citizen_warning_alerts")),
    )
    op.create_index(
        op.f("ix_citizen_warning_alerts_warning_id"), "citizen_warning_alerts", ["warning_id"], unique=False
    )
    op.create_table(
        "desk_tasks",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("warning_id", sa.UUID(), nullable=False),
        sa.Column("reason", sa.String(length=12), nullable=False),
        sa.Column(
            "priority", sa.Float(), nullable=False, comment="the alert score: the riskiest are called first"
        ),
        sa.Column("status", sa.String(length=8), server_default="open", nullable=False),
        sa.Column("taken_by", sa.String(length=120), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=120), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "outcome is null or outcome in ('dissuaded', 'reached_too_late', 'not_reached')",
            name=op.f("ck_desk_tasks_outcome"),
        ),
        sa.CheckConstraint(
            "reason in ('high_risk', 'undelivered', 'unanswered')", name=op.f("ck_desk_tasks_reason")
        ),
        sa.CheckConstraint("status in ('open', 'taken', 'closed')", name=op.f("ck_desk_tasks_status")),
        sa.ForeignKeyConstraint(
            ["warning_id"], ["citizen_warnings.id"], name=op.f("fk_desk_tasks_warning_id_citizen_warnings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_tasks")),
        sa.UniqueConstraint("warning_id", name=op.f("uq_desk_tasks_warning_id")),
    )
    op.create_index("ix_desk_tasks_status_priority", "desk_tasks", ["status", "priority"], unique=False)
    op.create_table(
        "warning_deliveries",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("warning_id", sa.UUID(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sealed_body", sa.LargeBinary(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("channel in ('sms', 'push')", name=op.f("ck_warning_deliveries_channel")),
        sa.CheckConstraint(
            "status in ('pending', 'sending', 'sent', 'delivered', 'failed', 'dead')",
            name=op.f("ck_warning_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["citizen_warnings.id"],
            name=op.f("fk_warning_deliveries_warning_id_citizen_warnings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_deliveries")),
        sa.UniqueConstraint("warning_id", "channel", name=op.f("uq_warning_deliveries_warning_id_channel")),
    )
    op.create_index(
        "ix_warning_deliveries_due",
        "warning_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status in ('pending', 'sending')"),
    )
    op.execute("INSERT INTO blocklist_feed (id, published_version) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_index(
        "ix_warning_deliveries_due",
        table_name="warning_deliveries",
        postgresql_where=sa.text("status in ('pending', 'sending')"),
    )
    op.drop_table("warning_deliveries")
    op.drop_index("ix_desk_tasks_status_priority", table_name="desk_tasks")
    op.drop_table("desk_tasks")
    op.drop_index(op.f("ix_citizen_warning_alerts_warning_id"), table_name="citizen_warning_alerts")
    op.drop_table("citizen_warning_alerts")
    op.drop_index(op.f("ix_blocklist_reports_entry_id"), table_name="blocklist_reports")
    op.drop_table("blocklist_reports")
    op.drop_index(
        "uq_blocklist_appeals_pending_entry",
        table_name="blocklist_appeals",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(op.f("ix_blocklist_appeals_entry_id"), table_name="blocklist_appeals")
    op.drop_table("blocklist_appeals")
    op.drop_index("ix_citizen_warnings_status_created", table_name="citizen_warnings")
    op.drop_index("ix_citizen_warnings_person_created", table_name="citizen_warnings")
    op.drop_table("citizen_warnings")
    op.drop_table("citizen_contacts")
    op.drop_table("blocklist_feed")
    op.drop_index(
        "uq_blocklist_entries_live_number",
        table_name="blocklist_entries",
        postgresql_where=sa.text("status in ('proposed', 'active')"),
    )
    op.drop_index("ix_blocklist_entries_version", table_name="blocklist_entries")
    op.drop_index(
        "ix_blocklist_entries_active_expiry",
        table_name="blocklist_entries",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("blocklist_entries")
    op.execute(sa.schema.DropSequence(sa.Sequence("blocklist_version_seq")))
