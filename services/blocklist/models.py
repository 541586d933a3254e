"""Tables of the blocklist: entries (fraud numbers and mule accounts), their proposers, the telecom reports
behind them, renewals, appeals, the Kafka feed cursor.

Every change is audited in the shared hash-chained audit log (services.kit.audit)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base, in_list

# proposed ─review─► active ─► expired | removed (appeal upheld or withdrawn)
#     └──review──► rejected     └─ renewal reviewed before expiry: active, with a new expiry
STATUSES = ("proposed", "active", "rejected", "expired", "removed")
LIVE = ("proposed", "active")
# A number (published to telecoms) or an account confirmed as a fraud receiver (to banks and payment
# providers); both go through the same review, expiry and appeal.
KINDS = ("number", "account")
# case: from a case (a number an officer proposes, or a confirmed case's receiving accounts); freeze: an
# account a freeze was executed on; operator: an officer's own listing; telecom_report: merged reports.
SOURCES = ("case", "telecom_report", "operator", "freeze")
# Every change to the published list takes the next value; readers sync "everything after version N".
VERSION_SEQ = Sequence("blocklist_version_seq", metadata=Base.metadata)


class Entry(Base):
    __tablename__ = "blocklist_entries"
    __table_args__ = (
        CheckConstraint(f"status in ({in_list(STATUSES)})", name="status"),
        CheckConstraint(f"source in ({in_list(SOURCES)})", name="source"),
        CheckConstraint(f"kind in ({in_list(KINDS)})", name="kind"),
        CheckConstraint(
            "(kind = 'number') = (number is not null) "
            "and (kind = 'account') = (institution is not null and account is not null)",
            name="subject",
        ),
        # At most one live (proposed or active) entry per number: a second report joins the first.
        Index(
            "uq_blocklist_entries_live_number",
            "number",
            unique=True,
            postgresql_where=text(f"status in ({in_list(LIVE)})"),
        ),
        # And per account: a second source (a freeze, then the closed case) joins the first.
        Index(
            "uq_blocklist_entries_live_account",
            "institution",
            "account",
            unique=True,
            postgresql_where=text(f"status in ({in_list(LIVE)})"),
        ),
        Index("ix_blocklist_entries_version", "version"),
        Index("ix_blocklist_entries_proposed_id", "proposed_at", "id"),  # the officers' list, by pages
        Index("ix_blocklist_entries_active_expiry", "expires_at", postgresql_where=text("status = 'active'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), server_default="number")
    number: Mapped[str | None] = mapped_column(String(20))
    institution: Mapped[str | None] = mapped_column(String(40), comment="of a listed account")
    account: Mapped[str | None] = mapped_column(String(34))
    status: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    case_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), comment="coordination case")
    reports: Mapped[int] = mapped_column(Integer, server_default="0")
    proposed_by: Mapped[str] = mapped_column(String(120))
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(120))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_note: Mapped[str | None] = mapped_column(Text)
    listed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    renewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), comment="its last renewal")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int | None] = mapped_column(BigInteger, comment="of its last published change")


class Proposer(Base):
    """Who proposed an entry: its first proposer and everyone whose proposal joined it. None of them may
    review it or decide an appeal on it (four eyes)."""

    __tablename__ = "blocklist_proposers"

    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("blocklist_entries.id"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(120), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), comment="of their first proposal of it")


class Report(Base):
    """A telecom's report of a fraud number; several reports may back one entry."""

    __tablename__ = "blocklist_reports"
    __table_args__ = (
        # A telecom's retry (the same request_id) finds its first report: a report counts once.
        Index("uq_blocklist_reports_request", "institution_id", "request_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("blocklist_entries.id"), index=True)
    institution_id: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), comment="the telecom's idempotency key (its request_id), if it gave one"
    )


class Appeal(Base):
    __tablename__ = "blocklist_appeals"
    __table_args__ = (
        CheckConstraint("status in ('pending', 'upheld', 'dismissed')", name="status"),
        Index(
            "uq_blocklist_appeals_pending_entry",
            "entry_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("blocklist_entries.id"), index=True)
    statement: Mapped[str] = mapped_column(Text)
    filed_by: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(10), server_default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str | None] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


RENEWAL_STATUSES = ("pending", "approved", "rejected")


class Renewal(Base):
    """An officer's proposal to keep a listed entry listed for a new period (the number or account is still
    in use for fraud), reviewed by a second person as the listing was."""

    __tablename__ = "blocklist_renewals"
    __table_args__ = (
        CheckConstraint(f"status in ({in_list(RENEWAL_STATUSES)})", name="status"),
        Index(
            "uq_blocklist_renewals_pending_entry",
            "entry_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("blocklist_entries.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), server_default="pending")
    proposed_by: Mapped[str] = mapped_column(String(120))
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(120))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_note: Mapped[str | None] = mapped_column(Text)


class Receipt(Base):
    """A message from coordination's `fraud-receivers` topic, taken once: a redelivery finds its id."""

    __tablename__ = "blocklist_receipts"

    message_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FeedCursor(Base):
    """How far the Kafka feed has published (one row): the entries' versions are the outbox."""

    __tablename__ = "blocklist_feed"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    published_version: Mapped[int] = mapped_column(BigInteger, server_default="0")
