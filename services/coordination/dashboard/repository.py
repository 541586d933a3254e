"""SQL of the dashboard figures; `unit` None counts every unit (auditors, metrics)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, and_, cast, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts.models import AlertRow
from services.coordination.cases.models import Case, CaseAlert
from services.coordination.instructions.models import Instruction, InstructionResponse
from services.coordination.instructions.repository import KEEPS_MONEY
from services.coordination.instructions.states import PENDING_ANSWER, Status
from streams.schemas.instructions import Kind


async def alert_counts(session: AsyncSession, *, since: datetime, until: datetime) -> dict[str, Any]:
    window = and_(AlertRow.received_at >= since, AlertRow.received_at < until)
    by_typology = dict(
        (
            await session.execute(
                select(AlertRow.typology, func.count()).where(window).group_by(AlertRow.typology)
            )
        ).all()
    )
    by_status = dict(
        (
            await session.execute(
                select(AlertRow.status, func.count()).where(window).group_by(AlertRow.status)
            )
        ).all()
    )
    hour = func.date_trunc("hour", AlertRow.received_at).label("hour")
    by_hour = (
        await session.execute(select(hour, func.count()).where(window).group_by(hour).order_by(hour))
    ).all()
    return {"by_typology": by_typology, "by_status": by_status, "by_hour": by_hour}


def _cases(unit: str | None, since: datetime, until: datetime) -> Any:
    where = and_(Case.opened_at >= since, Case.opened_at < until)
    return and_(where, Case.unit == unit) if unit is not None else where


async def amounts(
    session: AsyncSession, *, unit: str | None, since: datetime, until: datetime
) -> dict[str, Any]:
    cases = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Case.amount_lost), 0)).where(
                _cases(unit, since, until)
            )
        )
    ).one()
    held = func.coalesce(func.sum(Instruction.held_amount), 0)
    in_cases = Instruction.case_id.in_(select(Case.id).where(_cases(unit, since, until)))
    rows = (
        await session.execute(
            select(Instruction.kind, held).where(in_cases, KEEPS_MONEY).group_by(Instruction.kind)
        )
    ).all()
    by_kind = {kind: Decimal(str(value)) for kind, value in rows}
    # Per case, what is still lost: never below 0 (holds may keep more than a case lost: `money.flow`).
    per_case = (
        select(Instruction.case_id, held.label("held"))
        .where(in_cases, KEEPS_MONEY)
        .group_by(Instruction.case_id)
    ).subquery()
    left = func.greatest(Case.amount_lost - func.coalesce(per_case.c.held, 0), 0)
    outstanding = (
        await session.execute(
            select(func.coalesce(func.sum(left), 0))
            .select_from(Case)
            .outerjoin(per_case, per_case.c.case_id == Case.id)
            .where(_cases(unit, since, until))
        )
    ).scalar_one()
    return {"cases": int(cases[0]), "lost": Decimal(cases[1]), "outstanding": Decimal(outstanding), **by_kind}


async def median_to_stop_payment(
    session: AsyncSession, *, unit: str | None, since: datetime, until: datetime, source: str
) -> tuple[float | None, int]:
    """Median seconds from the first alert (source alert) or the case's opening (source report) to the
    case's first stop-payment issued."""
    first_stop = (
        select(Instruction.case_id, func.min(Instruction.issued_at).label("at"))
        .where(Instruction.kind == Kind.STOP_PAYMENT, Instruction.issued_at.is_not(None))
        .group_by(Instruction.case_id)
        .subquery()
    )
    if source == "alert":
        start = (
            select(CaseAlert.case_id, func.min(AlertRow.received_at).label("at"))
            .join(AlertRow, AlertRow.id == CaseAlert.alert_id)
            .group_by(CaseAlert.case_id)
            .subquery()
        )
        stmt = select(extract("epoch", first_stop.c.at - start.c.at).label("s")).select_from(
            first_stop.join(start, start.c.case_id == first_stop.c.case_id).join(
                Case, Case.id == first_stop.c.case_id
            )
        )
    else:
        stmt = select(extract("epoch", first_stop.c.at - Case.opened_at).label("s")).select_from(
            first_stop.join(Case, Case.id == first_stop.c.case_id)
        )
    stmt = stmt.where(_cases(unit, since, until), Case.source == source)
    inner = stmt.subquery()
    row = (
        await session.execute(
            select(func.percentile_cont(0.5).within_group(cast(inner.c.s, Float)), func.count())
        )
    ).one()
    return (float(row[0]) if row[0] is not None else None), int(row[1])


async def institution_times(
    session: AsyncSession, *, unit: str | None, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    first = (
        select(
            InstructionResponse.instruction_id,
            func.min(InstructionResponse.received_at).label("answer"),
            func.min(InstructionResponse.received_at)
            .filter(InstructionResponse.outcome.in_((Status.EXECUTED, Status.PARTIALLY_EXECUTED)))
            .label("executed"),
        )
        .group_by(InstructionResponse.instruction_id)
        .subquery()
    )
    answer_s = extract("epoch", first.c.answer - Instruction.issued_at)
    exec_s = extract("epoch", first.c.executed - Instruction.issued_at)
    where = and_(Instruction.issued_at >= since, Instruction.issued_at < until)
    if unit is not None:
        where = and_(where, Instruction.issued_by_unit == unit)
    stmt = (
        select(
            Instruction.institution_id,
            func.count(),
            func.count(first.c.answer),
            func.percentile_cont(0.5).within_group(cast(answer_s, Float)),
            func.percentile_cont(0.5).within_group(cast(exec_s, Float)),
            func.count().filter(Instruction.overdue.is_not(None) & Instruction.status.in_(PENDING_ANSWER)),
        )
        .outerjoin(first, first.c.instruction_id == Instruction.id)
        .where(where)
        .group_by(Instruction.institution_id)
        .order_by(Instruction.institution_id)
    )
    return [
        {
            "institution_id": r[0],
            "instructions": r[1],
            "answered": r[2],
            "median_first_answer_s": r[3],
            "median_execution_s": r[4],
            "overdue": r[5],
        }
        for r in (await session.execute(stmt)).all()
    ]
