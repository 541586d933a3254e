"""Coordination: cases, instructions and answers, outbox, money flow, hash-chained audit log; institution
delivery settings.

Revision ID: 0002_coordination
Revises: 0001_foundation
Create Date: 2026-11-27 09:48:33.400121
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_coordination"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


AUDIT_APPEND_ONLY = (
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
    END $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
)
STATUSES = (
    "'awaiting_approval', 'issued', 'delivered', 'acknowledged', 'executed', 'partially_executed', "
    "'rejected', 'account_not_found', 'failed', 'declined', 'cancelled', 'expired', 'released', 'converted'"
)
ACTIVE_HOLD = (
    "kind in ('stop_payment', 'freeze') and status in "
    "('awaiting_approval', 'issued', 'delivered', 'acknowledged', 'executed', 'partially_executed')"
)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor_unit", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("entity_type", sa.String(length=30), nullable=False),
        sa.Column("entity_id", sa.String(length=80), nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_log_hash")),
    )
    op.create_index(op.f("ix_audit_log_case_id"), "audit_log", ["case_id"], unique=False)
    op.create_table(
        "cases",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=False),
        sa.Column(
            "unit", sa.String(length=120), nullable=False, comment="the police unit that owns the case"
        ),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("opened_by", sa.String(length=120), nullable=False),
        sa.Column("assignee", sa.String(length=120), nullable=True),
        sa.Column("victim_name", sa.String(length=200), nullable=True),
        sa.Column("victim_phone", sa.String(length=20), nullable=True),
        sa.Column("victim_institution", sa.String(length=40), nullable=True),
        sa.Column("victim_account", sa.String(length=34), nullable=True),
        sa.Column("amount_lost", sa.Numeric(precision=15, scale=2), nullable=False),
        sa.Column("lost_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("source in ('alert', 'report')", name=op.f("ck_cases_source")),
        sa.CheckConstraint("status in ('open', 'closed')", name=op.f("ck_cases_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("case_number", name=op.f("uq_cases_case_number")),
    )
    op.create_index("ix_cases_unit_opened", "cases", ["unit", "opened_at"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "message_id", sa.String(length=80), nullable=False, comment="the receiver's idempotency key"
        ),
        sa.Column("instruction_id", sa.UUID(), nullable=True),
        sa.Column("institution_id", sa.String(length=40), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=True, comment="kafka: full topic name"),
        sa.Column("key", sa.String(length=80), nullable=True, comment="kafka: message key"),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("channel in ('kafka', 'webhook')", name=op.f("ck_outbox_channel")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_instruction_id"), "outbox", ["instruction_id"], unique=False)
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["channel", "next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("sent_at is null and dead_at is null"),
    )
    op.create_index("uq_outbox_message_channel", "outbox", ["message_id", "channel"], unique=True)
    op.create_table(
        "case_alerts",
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("alert_id", sa.UUID(), nullable=False),
        sa.Column("linked_by", sa.String(length=120), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_case_alerts_alert_id_alerts")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_alerts_case_id_cases")),
        sa.PrimaryKeyConstraint("case_id", "alert_id", name=op.f("pk_case_alerts")),
    )
    op.create_index(op.f("ix_case_alerts_alert_id"), "case_alerts", ["alert_id"], unique=False)
    op.create_table(
        "case_notes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("author", sa.String(length=120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_notes_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_notes")),
    )
    op.create_index(op.f("ix_case_notes_case_id"), "case_notes", ["case_id"], unique=False)
    op.create_table(
        "flow_accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("institution_id", sa.String(length=40), nullable=False),
        sa.Column("account", sa.String(length=34), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_flow_accounts_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["flow_accounts.id"], name=op.f("fk_flow_accounts_parent_id_flow_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_accounts")),
    )
    op.create_index(
        "uq_flow_accounts_case_account",
        "flow_accounts",
        ["case_id", "institution_id", "account"],
        unique=True,
    )
    op.create_table(
        "instructions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("institution_id", sa.String(length=40), nullable=False),
        sa.Column("account", sa.String(length=34), nullable=False),
        sa.Column("amount", sa.Numeric(precision=15, scale=2), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parent_id", sa.UUID(), nullable=True),
        sa.Column("beneficiary_institution", sa.String(length=40), nullable=True),
        sa.Column("beneficiary_account", sa.String(length=34), nullable=True),
        sa.Column("case_number", sa.String(length=64), nullable=False),
        sa.Column("document_number", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True, comment="why the officer issues it"),
        sa.Column("issued_by", sa.String(length=120), nullable=False),
        sa.Column("issued_by_unit", sa.String(length=120), nullable=False),
        sa.Column("approved_by", sa.String(length=120), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ack_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exec_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("renewals", sa.Integer(), server_default="0", nullable=False),
        sa.Column("overdue", sa.String(length=16), nullable=True, comment="acknowledgement or execution"),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("held_amount", sa.Numeric(precision=15, scale=2), nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=True, comment="the institution's reason"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "kind in ('query', 'stop_payment', 'freeze', 'extend', 'release', 'return_funds')",
            name=op.f("ck_instructions_kind"),
        ),
        sa.CheckConstraint(
            f"status in ({STATUSES})",
            name=op.f("ck_instructions_status"),
        ),
        sa.CheckConstraint("amount is null or amount > 0", name=op.f("ck_instructions_amount_positive")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_instructions_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institutions.id"], name=op.f("fk_instructions_institution_id_institutions")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["instructions.id"], name=op.f("fk_instructions_parent_id_instructions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instructions")),
    )
    op.create_index(op.f("ix_instructions_case_id"), "instructions", ["case_id"], unique=False)
    op.create_index(
        "ix_instructions_expiring",
        "instructions",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text(
            "status in ('issued', 'delivered', 'acknowledged', 'executed', 'partially_executed')"
        ),
    )
    op.create_index(
        "ix_instructions_institution_created", "instructions", ["institution_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_instructions_open_deadlines",
        "instructions",
        ["exec_due_at"],
        unique=False,
        postgresql_where=sa.text("status in ('issued', 'delivered', 'acknowledged')"),
    )
    op.create_index(op.f("ix_instructions_parent_id"), "instructions", ["parent_id"], unique=False)
    op.create_index(
        "uq_instructions_one_active_hold",
        "instructions",
        ["case_id", "kind", "institution_id", "account"],
        unique=True,
        postgresql_where=sa.text(ACTIVE_HOLD),
    )
    op.create_table(
        "flow_transfers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column(
            "ref", sa.String(length=120), nullable=False, comment="institution:transfer id, or report:n"
        ),
        sa.Column("from_account_id", sa.Integer(), nullable=True),
        sa.Column("to_account_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=15, scale=2), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_flow_transfers_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["from_account_id"],
            ["flow_accounts.id"],
            name=op.f("fk_flow_transfers_from_account_id_flow_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["to_account_id"],
            ["flow_accounts.id"],
            name=op.f("fk_flow_transfers_to_account_id_flow_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_transfers")),
    )
    op.create_index(op.f("ix_flow_transfers_case_id"), "flow_transfers", ["case_id"], unique=False)
    op.create_index("uq_flow_transfers_case_ref", "flow_transfers", ["case_id", "ref"], unique=True)
    op.create_table(
        "instruction_responses",
        sa.Column("response_id", sa.UUID(), nullable=False),
        sa.Column("instruction_id", sa.UUID(), nullable=False),
        sa.Column("institution_id", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("held_amount", sa.Numeric(precision=15, scale=2), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("query_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False, comment="api or kafka"),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_instruction_responses_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["instruction_id"],
            ["instructions.id"],
            name=op.f("fk_instruction_responses_instruction_id_instructions"),
        ),
        sa.PrimaryKeyConstraint("response_id", name=op.f("pk_instruction_responses")),
    )
    op.create_index(
        op.f("ix_instruction_responses_instruction_id"),
        "instruction_responses",
        ["instruction_id"],
        unique=False,
    )
    op.create_table(
        "flow_proposals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("transfer_id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.String(length=40), nullable=False),
        sa.Column("account", sa.String(length=34), nullable=False),
        sa.Column("amount", sa.Numeric(precision=15, scale=2), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("decided_by", sa.String(length=120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status in ('open', 'accepted', 'dismissed')", name=op.f("ck_flow_proposals_status")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_flow_proposals_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["flow_transfers.id"], name=op.f("fk_flow_proposals_transfer_id_flow_transfers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_proposals")),
    )
    op.create_index(op.f("ix_flow_proposals_case_id"), "flow_proposals", ["case_id"], unique=False)
    op.create_index("uq_flow_proposals_transfer", "flow_proposals", ["transfer_id"], unique=True)
    op.add_column(
        "institutions",
        sa.Column("kafka_delivery", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.add_column("institutions", sa.Column("webhook_url", sa.String(length=500), nullable=True))
    op.add_column("institutions", sa.Column("webhook_secret", sa.String(length=100), nullable=True))
    # The audit log is append-only: the database itself refuses to change or delete a row. (The hash
    # chain still detects a change made by someone who can switch the trigger off.)
    for statement in AUDIT_APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_column("institutions", "webhook_secret")
    op.drop_column("institutions", "webhook_url")
    op.drop_column("institutions", "kafka_delivery")
    op.drop_index("uq_flow_proposals_transfer", table_name="flow_proposals")
    op.drop_index(op.f("ix_flow_proposals_case_id"), table_name="flow_proposals")
    op.drop_table("flow_proposals")
    op.drop_index(op.f("ix_instruction_responses_instruction_id"), table_name="instruction_responses")
    op.drop_table("instruction_responses")
    op.drop_index("uq_flow_transfers_case_ref", table_name="flow_transfers")
    op.drop_index(op.f("ix_flow_transfers_case_id"), table_name="flow_transfers")
    op.drop_table("flow_transfers")
    op.drop_index(
        "uq_instructions_one_active_hold",
        table_name="instructions",
        postgresql_where=sa.text(ACTIVE_HOLD),
    )
    op.drop_index(op.f("ix_instructions_parent_id"), table_name="instructions")
    op.drop_index(
        "ix_instructions_open_deadlines",
        table_name="instructions",
        postgresql_where=sa.text("status in ('issued', 'delivered', 'acknowledged')"),
    )
    op.drop_index("ix_instructions_institution_created", table_name="instructions")
    op.drop_index(
        "ix_instructions_expiring",
        table_name="instructions",
        postgresql_where=sa.text(
            "status in ('issued', 'delivered', 'acknowledged', 'executed', 'partially_executed')"
        ),
    )
    op.drop_index(op.f("ix_instructions_case_id"), table_name="instructions")
    op.drop_table("instructions")
    op.drop_index("uq_flow_accounts_case_account", table_name="flow_accounts")
    op.drop_table("flow_accounts")
    op.drop_index(op.f("ix_case_notes_case_id"), table_name="case_notes")
    op.drop_table("case_notes")
    op.drop_index(op.f("ix_case_alerts_alert_id"), table_name="case_alerts")
    op.drop_table("case_alerts")
    op.drop_index("uq_outbox_message_channel", table_name="outbox")
    op.drop_index(
        "ix_outbox_pending",
        table_name="outbox",
        postgresql_where=sa.text("sent_at is null and dead_at is null"),
    )
    op.drop_index(op.f("ix_outbox_instruction_id"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_cases_unit_opened", table_name="cases")
    op.drop_table("cases")
    op.drop_index(op.f("ix_audit_log_case_id"), table_name="audit_log")
    op.drop_table("audit_log")
