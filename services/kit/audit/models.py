"""The audit log table. Rows are only ever inserted (a trigger refuses UPDATE and DELETE); each row's
hash covers its content and the previous row's hash, so a changed or deleted row breaks the chain. An
action's entries are written to `audit_pending` and moved into the log, linked, as its transaction commits
(migration 0024_audit_chained_at_commit)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Identity, String, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base


class _Content:
    """What an entry says (its hash covers all of it)."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(120))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_unit: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[str] = mapped_column(String(120))  # an institution user: `institution/username`
    case_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class AuditEntry(_Content, Base):
    __tablename__ = "audit_log"

    case_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class PendingAuditEntry(_Content, Base):
    """An entry of a transaction not yet committed: the database chains it as the transaction commits (a
    deferred trigger), so the table is empty outside transactions. `canonical`: the entry's canonical JSON
    up to the previous entry's hash (`services.kit.audit.service.chain_prefix`)."""

    __tablename__ = "audit_pending"
    __table_args__ = {"prefixes": ["UNLOGGED"]}  # (empty outside transactions: nothing to log or recover)

    canonical: Mapped[str] = mapped_column(Text)


class AuditCheckpoint(Base):
    """Where a verification ended: the chain held (or not) from its first row through `through_id`, whose
    hash is `head_hash`. The audit page verifies only the rows after the newest checkpoint; a walk of the
    whole chain runs on a schedule (`services.coordination.audit.check`)."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    whole: Mapped[bool] = mapped_column(Boolean)  # walked from the first row, not from a checkpoint
    ok: Mapped[bool] = mapped_column(Boolean)
    checked: Mapped[int] = mapped_column(BigInteger)  # rows from the first through `through_id`
    through_id: Mapped[int] = mapped_column(BigInteger)  # 0: the chain was empty
    head_hash: Mapped[str] = mapped_column(String(64))
    first_bad_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
