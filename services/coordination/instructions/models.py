"""Instruction rows and the institutions' answers to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.coordination.instructions.states import ACTIVE, HOLD_KINDS, HOLDING, PENDING_ANSWER, STATUSES
from services.kit.db import Base, in_list
from streams.schemas.instructions import KINDS


class Instruction(Base):
    __tablename__ = "instructions"
    __table_args__ = (
        CheckConstraint(f"kind in ({in_list(KINDS)})", name="kind"),
        CheckConstraint(f"status in ({in_list(STATUSES)})", name="status"),
        CheckConstraint("amount is null or amount > 0", name="amount_positive"),
        # Two operators issuing the same stop-payment (or freeze) on the same account for the same
        # case: the database lets only one be active.
        Index(
            "uq_instructions_one_active_hold",
            "case_id",
            "kind",
            "institution_id",
            "account",
            unique=True,
            postgresql_where=text(f"kind in ({in_list(HOLD_KINDS)}) and status in ({in_list(ACTIVE)})"),
        ),
        # The scheduler's scans: open deadlines and holds that may lapse.
        Index(
            "ix_instructions_open_deadlines",
            "exec_due_at",
            postgresql_where=text(f"status in ({in_list(PENDING_ANSWER)})"),
        ),
        Index(
            "ix_instructions_expiring",
            "expires_at",
            postgresql_where=text(f"status in ({in_list(PENDING_ANSWER + HOLDING)})"),
        ),
        Index("ix_instructions_institution_created", "institution_id", "created_at"),
        # A request sent twice (a double submit, a retry after a timeout) issues one instruction.
        Index("uq_instructions_request_id", "request_id", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"))
    account: Mapped[str] = mapped_column(String(34))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(15, 2))
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("instructions.id"), index=True)
    beneficiary_institution: Mapped[str | None] = mapped_column(String(40))
    beneficiary_account: Mapped[str | None] = mapped_column(String(34))
    case_number: Mapped[str] = mapped_column(String(64))
    document_number: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text, comment="why the officer issues it")
    issued_by: Mapped[str] = mapped_column(String(120))
    issued_by_unit: Mapped[str] = mapped_column(String(120))
    approved_by: Mapped[str | None] = mapped_column(String(120))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ack_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    exec_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    renewals: Mapped[int] = mapped_column(Integer, server_default="0")
    overdue: Mapped[str | None] = mapped_column(String(16), comment="acknowledgement or execution")
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    held_amount: Mapped[Decimal | None] = mapped_column(Numeric(15, 2))
    outcome_reason: Mapped[str | None] = mapped_column(Text, comment="the institution's reason")
    decision_note: Mapped[str | None] = mapped_column(Text, comment="the supervisor's note on declining")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), comment="the issuing client's idempotency key (its request_id), if it gave one"
    )


class InstructionResponse(Base):
    """Every answer an institution gave, kept as sent; `response_id` makes a repeat a no-op."""

    __tablename__ = "instruction_responses"

    response_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    instruction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instructions.id"), index=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"))
    outcome: Mapped[str] = mapped_column(String(24))
    held_amount: Mapped[Decimal | None] = mapped_column(Numeric(15, 2))
    reason: Mapped[str | None] = mapped_column(Text)
    query_result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    channel: Mapped[str] = mapped_column(String(8), comment="api or kafka")
    responded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
