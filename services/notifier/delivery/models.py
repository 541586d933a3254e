"""One row per warning and channel: the outbox of messages and the record of their fate."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base

# pending → sending (claimed, leased) → sent (gateway took it) → delivered | failed (receipt)
# sending → pending (retry after backoff) → ... → dead (last attempt failed: the dead letter)
STATUSES = ("pending", "sending", "sent", "delivered", "failed", "dead")
FINAL = ("delivered", "failed", "dead")


class Delivery(Base):
    __tablename__ = "warning_deliveries"
    __table_args__ = (
        UniqueConstraint("warning_id", "channel"),
        CheckConstraint("channel in ('sms', 'push')", name="channel"),
        CheckConstraint(
            "status in ('pending', 'sending', 'sent', 'delivered', 'failed', 'dead')", name="status"
        ),
        # The worker's claim query: due rows that are waiting or whose lease ran out.
        Index(
            "ix_warning_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status in ('pending', 'sending')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    warning_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("citizen_warnings.id"))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The message body, sealed (AES-GCM): it holds the answer link, whose token is stored only hashed.
    # Cleared once the gateway has it or it is dead, so the link is not kept in any readable form.
    sealed_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    receipt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
