"""The de-duplication ledger: every (institution, event id) ever accepted, within the retention, with a digest
of the event's content (an id used again for other content is refused), and the claims still in doubt
(handed to Kafka, not yet acknowledged)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base


class IngestedEvent(Base):
    __tablename__ = "ingested_events"
    __table_args__ = (
        Index(
            "ix_ingested_events_pending", "pending_until", postgresql_where=text("pending_until is not null")
        ),
    )

    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    pending_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="a claim in doubt until Kafka answers: the end of its lease; null once settled",
    )
    content_digest: Mapped[bytes | None] = mapped_column(
        LargeBinary,
        comment="sha-256 of the event's canonical content; null on older rows (compared by id only)",
    )
