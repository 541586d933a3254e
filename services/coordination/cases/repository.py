"""SQL of cases, their linked alerts and notes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts.models import AlertRow
from services.coordination.cases.models import Case, CaseAlert, CaseNote
from services.kit.errors import Conflict


async def add(session: AsyncSession, case: Case) -> None:
    session.add(case)
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_cases_case_number" in str(exc.orig):
            raise Conflict(f"case number {case.case_number} is taken") from exc
        raise


async def get(session: AsyncSession, case_id: uuid.UUID, *, for_update: bool = False) -> Case | None:
    stmt = select(Case).where(Case.id == case_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession, *, unit: str | None, status: str | None, before: datetime | None, limit: int
) -> list[Case]:
    stmt = select(Case)
    if unit is not None:
        stmt = stmt.where(Case.unit == unit)
    if status is not None:
        stmt = stmt.where(Case.status == status)
    if before is not None:
        stmt = stmt.where(Case.opened_at < before)
    stmt = stmt.order_by(Case.opened_at.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def alert(session: AsyncSession, alert_id: uuid.UUID) -> AlertRow | None:
    return await session.get(AlertRow, alert_id)


async def link_alert(session: AsyncSession, *, case_id: uuid.UUID, alert_id: uuid.UUID, by: str) -> bool:
    stmt = (
        insert(CaseAlert)
        .values(case_id=case_id, alert_id=alert_id, linked_by=by)
        .on_conflict_do_nothing()
        .returning(CaseAlert.alert_id)
    )
    return (await session.execute(stmt)).first() is not None


async def alert_ids(session: AsyncSession, case_id: uuid.UUID) -> list[uuid.UUID]:
    stmt = select(CaseAlert.alert_id).where(CaseAlert.case_id == case_id).order_by(CaseAlert.linked_at)
    return list((await session.execute(stmt)).scalars())


async def add_note(session: AsyncSession, note: CaseNote) -> None:
    session.add(note)
    await session.flush()


async def notes(session: AsyncSession, case_id: uuid.UUID) -> list[CaseNote]:
    stmt = select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.id)
    return list((await session.execute(stmt)).scalars())
