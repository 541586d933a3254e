"""SQL of the money-flow tree: accounts, transfers between them, proposals, and the held amounts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.instructions.models import Instruction
from services.coordination.instructions.states import HOLDING
from services.coordination.money.models import FlowAccount, FlowTransfer, Proposal
from streams.schemas.instructions import Kind


async def account(
    session: AsyncSession,
    *,
    case_id: uuid.UUID,
    institution_id: str,
    account: str,
    depth: int,
    parent_id: int | None,
) -> FlowAccount:
    """The tree node of this account, made on first sight (first parent and depth win)."""
    stmt = (
        insert(FlowAccount)
        .values(
            case_id=case_id, institution_id=institution_id, account=account, depth=depth, parent_id=parent_id
        )
        .on_conflict_do_nothing(index_elements=["case_id", "institution_id", "account"])
    )
    await session.execute(stmt)
    found = select(FlowAccount).where(
        FlowAccount.case_id == case_id,
        FlowAccount.institution_id == institution_id,
        FlowAccount.account == account,
    )
    return (await session.execute(found)).scalar_one()


async def add_transfer(
    session: AsyncSession,
    *,
    case_id: uuid.UUID,
    ref: str,
    from_id: int | None,
    to_id: int,
    amount: Decimal,
    at: object,
) -> int | None:
    """Record a transfer once (by ref); None when it was known already."""
    stmt = (
        insert(FlowTransfer)
        .values(case_id=case_id, ref=ref, from_account_id=from_id, to_account_id=to_id, amount=amount, at=at)
        .on_conflict_do_nothing(index_elements=["case_id", "ref"])
        .returning(FlowTransfer.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_proposal(session: AsyncSession, proposal: Proposal) -> None:
    session.add(proposal)
    await session.flush()


async def accounts(session: AsyncSession, case_id: uuid.UUID) -> list[FlowAccount]:
    stmt = (
        select(FlowAccount).where(FlowAccount.case_id == case_id).order_by(FlowAccount.depth, FlowAccount.id)
    )
    return list((await session.execute(stmt)).scalars())


async def transfers(session: AsyncSession, case_id: uuid.UUID) -> list[FlowTransfer]:
    stmt = select(FlowTransfer).where(FlowTransfer.case_id == case_id).order_by(FlowTransfer.id)
    return list((await session.execute(stmt)).scalars())


async def proposals(
    session: AsyncSession,
    case_id: uuid.UUID,
    *,
    status: str | None = None,
    ids: Sequence[int] | None = None,
    for_update: bool = False,
) -> list[Proposal]:
    stmt = select(Proposal).where(Proposal.case_id == case_id)
    if status is not None:
        stmt = stmt.where(Proposal.status == status)
    if ids is not None:
        stmt = stmt.where(Proposal.id.in_(ids))
    if for_update:
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt.order_by(Proposal.id))).scalars())


async def transfer(session: AsyncSession, transfer_id: int) -> FlowTransfer | None:
    return await session.get(FlowTransfer, transfer_id)


async def held_by_account(session: AsyncSession, case_id: uuid.UUID) -> dict[tuple[str, str, str], Decimal]:
    """(kind, institution, account) → amount held now (stop-payment, freeze) or returned (return: as the
    bank stated, in full or in part)."""
    in_force = Instruction.kind.in_((Kind.STOP_PAYMENT, Kind.FREEZE)) & Instruction.status.in_(HOLDING)
    returned = (Instruction.kind == Kind.RETURN_FUNDS) & Instruction.status.in_(HOLDING)
    stmt = (
        select(
            Instruction.kind,
            Instruction.institution_id,
            Instruction.account,
            func.sum(Instruction.held_amount),
        )
        .where(Instruction.case_id == case_id, in_force | returned)
        .group_by(Instruction.kind, Instruction.institution_id, Instruction.account)
    )
    return {(k, i, a): Decimal(v or 0) for k, i, a, v in (await session.execute(stmt)).all()}
