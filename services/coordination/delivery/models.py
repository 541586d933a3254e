"""The outbox: one row per message and channel, written in the transaction that decided to send it, and
removed once delivered or given up longer ago than the retention (delivery.purge)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("channel in ('kafka', 'webhook')", name="channel"),
        # A message goes once per channel: a retried decision cannot queue it twice.
        Index("uq_outbox_message_channel", "message_id", "channel", unique=True),
        Index(
            "ix_outbox_pending",
            "channel",
            "next_attempt_at",
            postgresql_where=text("sent_at is null and dead_at is null"),
        ),
        # The housekeeping's: finished messages, the oldest first (delivery.purge).
        Index(
            "ix_outbox_finished",
            "created_at",
            postgresql_where=text("sent_at is not null or dead_at is not null"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(80), comment="the receiver's idempotency key")
    instruction_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    institution_id: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(8))
    topic: Mapped[str | None] = mapped_column(String(200), comment="kafka: full topic name")
    key: Mapped[str | None] = mapped_column(String(80), comment="kafka: message key")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    publisher: Mapped[str | None] = mapped_column(
        String(200), comment="kafka: transactional id of the producer of the last attempt"
    )
