"""Alert rows and the record of every status change."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base

STATUSES = ("new", "triaged", "dismissed", "escalated")


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("status in ('new', 'triaged', 'dismissed', 'escalated')", name="status"),
        Index("ix_alerts_received_id", "received_at", "id"),
        Index("ix_alerts_status_received", "status", "received_at"),
        CheckConstraint("revision >= 1", name="revision"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    typology: Mapped[str] = mapped_column(String(40), index=True)
    score: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), server_default="new")
    reasons: Mapped[list[str]] = mapped_column(JSONB)
    recommended_actions: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    subject: Mapped[dict[str, Any]] = mapped_column(JSONB)
    triggering_event_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    amount_at_risk: Mapped[Decimal | None] = mapped_column(Numeric(15, 2))
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    scorer_version: Mapped[str] = mapped_column(String(64))
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_changed_by: Mapped[str | None] = mapped_column(String(120))
    # The model's input and the feature-set hash it was computed by: with the case outcome, a
    # training label (models.training.feedback). Null for rule-based alerts and those stored before.
    features: Mapped[list[float] | None] = mapped_column(ARRAY(Float))
    feature_set: Mapped[str | None] = mapped_column(String(16))
    # One alert per scam episode: later payments of the episode arrive as revisions of the same alert and
    # are merged in (docs/alerts.md). `incident_id` groups the alerts about one collection account.
    revision: Mapped[int] = mapped_column(Integer, server_default="1")
    incident_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    payments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    scam_typology: Mapped[str | None] = mapped_column(String(40))
    scam_typology_score: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="when a later revision last changed it"
    )


class AlertStatusChange(Base):
    __tablename__ = "alert_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id"), index=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(120))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_unit: Mapped[str] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
