"""Desk tasks: one per warning, taken and closed by desk staff."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKey, Index, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base

REASONS = ("high_risk", "undelivered", "unanswered")


class DeskTask(Base):
    __tablename__ = "desk_tasks"
    __table_args__ = (
        CheckConstraint("reason in ('high_risk', 'undelivered', 'unanswered')", name="reason"),
        CheckConstraint("status in ('open', 'taken', 'closed')", name="status"),
        CheckConstraint(
            "outcome is null or outcome in ('dissuaded', 'reached_too_late', 'not_reached')", name="outcome"
        ),
        Index("ix_desk_tasks_status_priority", "status", "priority"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    warning_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("citizen_warnings.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(12))
    priority: Mapped[float] = mapped_column(Float, comment="the alert score: the riskiest are called first")
    status: Mapped[str] = mapped_column(String(8), server_default="open")
    taken_by: Mapped[str | None] = mapped_column(String(120))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(120))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
