"""Case rows, the alerts linked to a case, and its notes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Numeric, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.coordination.cases.schemas import OUTCOMES
from services.kit.db import Base, in_list

CASE_STATUSES = ("open", "closed")


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("status in ('open', 'closed')", name="status"),
        CheckConstraint("source in ('alert', 'report')", name="source"),
        # What the officer closing a case found (schemas.Outcome); its alerts' label for training.
        CheckConstraint(f"outcome is null or outcome in ({in_list(OUTCOMES)})", name="outcome"),
        # A closed case has an outcome, an open one none: a label is never missing nor premature.
        CheckConstraint("(status = 'closed') = (outcome is not null)", name="outcome_when_closed"),
        Index("ix_cases_unit_opened", "unit", "opened_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    case_number: Mapped[str] = mapped_column(String(64), unique=True)
    unit: Mapped[str] = mapped_column(String(120), comment="the police unit that owns the case")
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    source: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    opened_by: Mapped[str] = mapped_column(String(120))
    assignee: Mapped[str | None] = mapped_column(String(120))
    victim_name: Mapped[str | None] = mapped_column(String(200))
    victim_phone: Mapped[str | None] = mapped_column(String(20))
    victim_institution: Mapped[str | None] = mapped_column(String(40))
    victim_account: Mapped[str | None] = mapped_column(String(34))
    amount_lost: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    lost_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16), comment="set on closing; null while open")


class CaseAlert(Base):
    __tablename__ = "case_alerts"

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id"), primary_key=True, index=True)
    linked_by: Mapped[str] = mapped_column(String(120))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CaseNote(Base):
    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    author: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
