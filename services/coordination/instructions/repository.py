"""SQL of instructions and of the institutions' answers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.instructions.models import Instruction, InstructionResponse
from services.coordination.instructions.states import ACTIVE, HOLD_KINDS, HOLDING, PENDING_ANSWER, Status
from services.kit.errors import Conflict
from streams.schemas.instructions import Kind

ONE_ACTIVE_HOLD = "uq_instructions_one_active_hold"
# An instruction that keeps money for its case: a stop-payment or freeze in force, or a return executed
# (all or part: `held_amount` as the bank stated).
KEEPS_MONEY = Instruction.kind.in_((*HOLD_KINDS, Kind.RETURN_FUNDS)) & Instruction.status.in_(HOLDING)


async def add(session: AsyncSession, row: Instruction) -> None:
    """Insert; the one-active-hold index turns a concurrent duplicate into Conflict."""
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        if ONE_ACTIVE_HOLD in str(exc.orig):
            raise Conflict(
                f"an active {row.kind} on this account already exists in this case",
                details={"constraint": ONE_ACTIVE_HOLD, "account_institution": row.institution_id},
            ) from exc
        raise


async def issued_for(session: AsyncSession, request_id: uuid.UUID) -> Instruction | None:
    """The instruction a request with this idempotency key issued, if one did. Requests with the same key
    wait for each other here (a transaction-scoped advisory lock on it), so the second sees the first's."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(str(request_id), 0))))
    stmt = select(Instruction).where(Instruction.request_id == request_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get(
    session: AsyncSession, instruction_id: uuid.UUID, *, for_update: bool = False
) -> Instruction | None:
    """The instruction; locked, as it is now (one already in the session, read before its case was locked, is
    read again)."""
    stmt = select(Instruction).where(Instruction.id == instruction_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_many_for_update(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Instruction]:
    """The instructions, locked in the coordination's order (cases.repository): the follow-ups (an extension,
    release or return) before the holds they act on, as an answer to a follow-up takes it and then its hold;
    then by id. A follow-up acts on a hold, never on another follow-up (`service._shape_follow_up`): one
    level, so "has a parent" first is the whole of it."""
    stmt = (
        select(Instruction)
        .where(Instruction.id.in_(ids))
        .order_by(Instruction.parent_id.is_(None), Instruction.id)  # (false first: the follow-ups)
        .with_for_update()
        .execution_options(populate_existing=True)  # (as they are now, as `get` reads one)
    )
    return list((await session.execute(stmt)).scalars())


async def account_holds(
    session: AsyncSession, *, case_id: uuid.UUID, institution_id: str, account: str
) -> list[uuid.UUID]:
    """The ids of a case's stop-payments and freezes of one account, in every status."""
    stmt = select(Instruction.id).where(
        Instruction.case_id == case_id,
        Instruction.kind.in_(HOLD_KINDS),
        Instruction.institution_id == institution_id,
        Instruction.account == account,
    )
    return list((await session.execute(stmt)).scalars())


async def active_hold(
    session: AsyncSession, *, case_id: uuid.UUID, kind: str, institution_id: str, account: str
) -> Instruction | None:
    stmt = (
        select(Instruction)
        .where(
            Instruction.case_id == case_id,
            Instruction.kind == kind,
            Instruction.institution_id == institution_id,
            Instruction.account == account,
            Instruction.status.in_(HOLDING),
        )
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def find_active(
    session: AsyncSession, *, case_id: uuid.UUID, kind: str, institution_id: str, account: str
) -> Instruction | None:
    stmt = select(Instruction).where(
        Instruction.case_id == case_id,
        Instruction.kind == kind,
        Instruction.institution_id == institution_id,
        Instruction.account == account,
        Instruction.status.in_(ACTIVE),
    )
    return (await session.execute(stmt)).scalars().first()


async def keeping_open(session: AsyncSession, case_id: uuid.UUID) -> list[Instruction]:
    """The case's instructions whose work is not done: awaiting approval, waiting for the institution's
    answer (`ACTIVE` of every kind), or a hold in force. An executed query, extension, release or return is
    done; only a hold stays in force once executed."""
    stmt = (
        select(Instruction)
        .where(
            Instruction.case_id == case_id,
            Instruction.status.in_(ACTIVE),
            or_(Instruction.kind.in_(HOLD_KINDS), Instruction.status.not_in(HOLDING)),
        )
        .order_by(Instruction.created_at)
    )
    return list((await session.execute(stmt)).scalars())


async def children(session: AsyncSession, parent_id: uuid.UUID, *kinds: str) -> list[Instruction]:
    """The instructions of these kinds made on an instruction (extensions, releases, returns of a hold)."""
    stmt = select(Instruction).where(Instruction.parent_id == parent_id, Instruction.kind.in_(kinds))
    return list((await session.execute(stmt)).scalars())


async def for_case(session: AsyncSession, case_id: uuid.UUID) -> list[Instruction]:
    stmt = select(Instruction).where(Instruction.case_id == case_id).order_by(Instruction.created_at)
    return list((await session.execute(stmt)).scalars())


async def search(
    session: AsyncSession,
    *,
    unit: str | None = None,
    institution_id: str | None = None,
    status: str | None = None,
    overdue: bool | None = None,
    hide_unissued: bool = False,
    limit: int = 100,
    before: datetime | None = None,
    kind: str | None = None,
    holding: bool | None = None,
    expires_before: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Instruction]:
    """Newest first; `after`: the rows after a page's last (its time and id, services.kit.pages). An
    institution's list (`hide_unissued`) is by when each was sent to it: one approved after a later one was
    made still comes above what the institution has seen."""
    stmt = select(Instruction)
    newest = Instruction.issued_at if hide_unissued else Instruction.created_at
    if after is not None:
        stmt = stmt.where((newest < after[0]) | ((newest == after[0]) & (Instruction.id < after[1])))
    if kind is not None:
        stmt = stmt.where(Instruction.kind == kind)
    if holding is True:
        stmt = stmt.where(Instruction.status.in_(HOLDING))
    if expires_before is not None:
        stmt = stmt.where(Instruction.expires_at < expires_before)
    if unit is not None:
        stmt = stmt.where(Instruction.issued_by_unit == unit)
    if institution_id is not None:
        stmt = stmt.where(Instruction.institution_id == institution_id)
    if hide_unissued:
        # An institution never sees what has not been sent to it.
        stmt = stmt.where(Instruction.issued_at.is_not(None))
    if status is not None:
        stmt = stmt.where(Instruction.status == status)
    if overdue is True:
        stmt = stmt.where(Instruction.overdue.is_not(None), Instruction.status.in_(PENDING_ANSWER))
    if before is not None:
        stmt = stmt.where(Instruction.created_at < before)
    stmt = stmt.order_by(newest.desc(), Instruction.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def add_response(session: AsyncSession, values: dict[str, object]) -> bool:
    """Store an answer; False when this response id was stored before (a repeat)."""
    stmt = (
        insert(InstructionResponse)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["response_id"])
        .returning(InstructionResponse.response_id)
    )
    return (await session.execute(stmt)).first() is not None


async def get_response(session: AsyncSession, response_id: uuid.UUID) -> InstructionResponse | None:
    return await session.get(InstructionResponse, response_id)


async def responses(session: AsyncSession, instruction_id: uuid.UUID) -> list[InstructionResponse]:
    stmt = (
        select(InstructionResponse)
        .where(InstructionResponse.instruction_id == instruction_id)
        .order_by(InstructionResponse.received_at)
    )
    return list((await session.execute(stmt)).scalars())


async def due_to_expire(session: AsyncSession, *, now: datetime, limit: int) -> list[Instruction]:
    stmt = (
        select(Instruction)
        .where(
            Instruction.kind.in_(HOLD_KINDS),
            Instruction.status.in_(PENDING_ANSWER + HOLDING),
            Instruction.expires_at <= now,
        )
        .order_by(Instruction.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def newly_overdue(session: AsyncSession, *, now: datetime, limit: int) -> list[Instruction]:
    """Unanswered instructions past a deadline they have not been escalated for yet."""
    ack_late = (
        (Instruction.status.in_((Status.ISSUED, Status.DELIVERED)))
        & (Instruction.ack_due_at <= now)
        & (Instruction.overdue.is_(None))
    )
    exec_late = (
        (Instruction.status.in_(PENDING_ANSWER))
        & (Instruction.exec_due_at <= now)
        & ((Instruction.overdue.is_(None)) | (Instruction.overdue != "execution"))
    )
    stmt = (
        select(Instruction)
        .where(or_(ack_late, exec_late))
        .order_by(Instruction.exec_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def overdue_count(session: AsyncSession) -> int:
    stmt = select(func.count()).where(
        Instruction.overdue.is_not(None), Instruction.status.in_(PENDING_ANSWER)
    )
    return int((await session.execute(stmt)).scalar_one())
