"""Accounts the case's money reached, the transfers between them, and proposed next-hop stops."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, Numeric, String, func
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base


class FlowAccount(Base):
    """An account in the case's money-flow tree; depth 0 is where the victim's money went first."""

    __tablename__ = "flow_accounts"
    __table_args__ = (
        Index("uq_flow_accounts_case_account", "case_id", "institution_id", "account", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    institution_id: Mapped[str] = mapped_column(String(40))
    account: Mapped[str] = mapped_column(String(34))
    depth: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("flow_accounts.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FlowTransfer(Base):
    """Money into a flow account: from the victim (report) or from another account (a query answer)."""

    __tablename__ = "flow_transfers"
    __table_args__ = (Index("uq_flow_transfers_case_ref", "case_id", "ref", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    # 140: an institution id (40), an account (34) and a transfer id (64), and their two colons.
    ref: Mapped[str] = mapped_column(String(140), comment="institution:account:transfer id, or report:n")
    from_account_id: Mapped[int | None] = mapped_column(ForeignKey("flow_accounts.id"))
    to_account_id: Mapped[int] = mapped_column(ForeignKey("flow_accounts.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A report's payment has no payer in the tree: its victim is named by their own (paying) account, the
    # one a bank lists it from, so that each victim's payments are reconciled on their own.
    victim_institution: Mapped[str | None] = mapped_column(
        String(40), comment="a reported payment's victim: the institution of their own account, if named"
    )
    victim_account: Mapped[str | None] = mapped_column(
        String(34), comment="a reported payment's victim: their own (paying) account, if named"
    )


class Proposal(Base):
    """A next-hop stop-payment Stopline suggests; an operator accepts or dismisses it."""

    __tablename__ = "flow_proposals"
    __table_args__ = (
        CheckConstraint("status in ('open', 'accepted', 'dismissed')", name="status"),
        Index("uq_flow_proposals_transfer", "transfer_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("flow_transfers.id"))
    institution_id: Mapped[str] = mapped_column(String(40))
    account: Mapped[str] = mapped_column(String(34))
    amount: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    depth: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
