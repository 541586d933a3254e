"""Tables of warnings, the alerts folded into each, and what is known of a person's contact options."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Numeric,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base

OUTCOMES = ("dissuaded", "reached_too_late", "not_reached")


class CitizenWarning(Base):
    """One warning per (scam episode, person): the database refuses a second one."""

    __tablename__ = "citizen_warnings"
    __table_args__ = (
        UniqueConstraint("episode", "person"),
        CheckConstraint("status in ('open', 'answered', 'closed')", name="status"),
        CheckConstraint("answer is null or answer in ('safe', 'defrauded')", name="answer"),
        CheckConstraint(
            "outcome is null or outcome in ('dissuaded', 'reached_too_late', 'not_reached')", name="outcome"
        ),
        Index("ix_citizen_warnings_person_created", "person", "created_at"),
        Index("ix_citizen_warnings_status_created", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    person: Mapped[str] = mapped_column(String(40), comment="keyed pseudonym of the phone number")
    episode: Mapped[str] = mapped_column(String(200), comment="the scam call (event ref) the alerts share")
    phone: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(4))
    typology: Mapped[str] = mapped_column(String(40))
    score: Mapped[float] = mapped_column(Float)
    amount_at_risk: Mapped[Decimal | None] = mapped_column(Numeric(15, 2))
    account: Mapped[str | None] = mapped_column(String(34), comment="the victim's paying account")
    institution: Mapped[str | None] = mapped_column(String(40))
    payee_account: Mapped[str | None] = mapped_column(String(34), comment="where the money went")
    payee_institution: Mapped[str | None] = mapped_column(String(40))
    first_alert_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), comment="of the triggering event")
    status: Mapped[str] = mapped_column(String(12), server_default="open")
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    token_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answer: Mapped[str | None] = mapped_column(String(12))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(20))
    first_delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    desk_defrauded_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="when the phone desk first heard from the person that they are being defrauded",
    )
    case_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), comment="the coordination case opened from a 'defrauded' answer"
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WarningAlert(Base):
    """Every alert that led to (or joined) a warning; the alert id makes consuming idempotent."""

    __tablename__ = "citizen_warning_alerts"

    alert_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    warning_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("citizen_warnings.id"), index=True)
    joined: Mapped[str] = mapped_column(String(12), comment="created, episode or rate_limit")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WarningPayment(Base):
    """The payments of a warning's alerts (each revision's, and those of episodes joined to it), each once
    by its event: the warning's amount at risk is their sum; a "defrauded" case drafts a stop per payee."""

    __tablename__ = "citizen_warning_payments"

    warning_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("citizen_warnings.id"), primary_key=True)
    event_ref: Mapped[str] = mapped_column(String(200), primary_key=True, comment="institution:event_id")
    amount: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payee_account: Mapped[str | None] = mapped_column(String(34))
    payee_institution: Mapped[str | None] = mapped_column(String(40))


class Contact(Base):
    """What a telecom tells us of a subscriber: preferred language and app-push id, if any."""

    __tablename__ = "citizen_contacts"
    __table_args__ = (CheckConstraint("language in ('zh', 'ug', 'kk')", name="language"),)

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    operator: Mapped[str] = mapped_column(
        String(40), comment="the telecom operator the number is with; only it sets the contact"
    )
    language: Mapped[str] = mapped_column(String(4))
    push_id: Mapped[str | None] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
