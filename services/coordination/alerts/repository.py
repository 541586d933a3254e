"""SQL of alerts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts.models import AlertRow, AlertStatusChange


async def insert_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert alerts not stored yet (the alert id is the idempotency key); return the ids inserted."""
    if not rows:
        return set()
    stmt = (
        insert(AlertRow)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(AlertRow.id)
    )
    return set((await session.execute(stmt)).scalars())


async def lock(session: AsyncSession, alert_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, AlertRow]:
    """The stored alerts of these ids, locked for this transaction (a revision is merged into them)."""
    if not alert_ids:
        return {}
    stmt = select(AlertRow).where(AlertRow.id.in_(alert_ids)).order_by(AlertRow.id).with_for_update()
    return {row.id: row for row in (await session.execute(stmt)).scalars()}


@dataclass(frozen=True)
class AlertFilter:
    status: str | None = None
    typology: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    incident_id: uuid.UUID | None = None
    statuses: tuple[str, ...] = ()  # any of these (the incidents' "open": new or triaged)


S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def filtered(stmt: S, where: AlertFilter) -> S:
    """The statement with the filter's conditions on `AlertRow`."""
    if where.status:
        stmt = stmt.where(AlertRow.status == where.status)
    if where.statuses:
        stmt = stmt.where(AlertRow.status.in_(where.statuses))
    if where.typology:
        stmt = stmt.where(AlertRow.typology == where.typology)
    if where.min_score is not None:
        stmt = stmt.where(AlertRow.score >= where.min_score)
    if where.max_score is not None:
        stmt = stmt.where(AlertRow.score <= where.max_score)
    if where.since:
        stmt = stmt.where(AlertRow.received_at >= where.since)
    if where.until:
        stmt = stmt.where(AlertRow.received_at < where.until)
    if where.incident_id:
        stmt = stmt.where(AlertRow.incident_id == where.incident_id)
    return stmt


async def list_page(
    session: AsyncSession, *, where: AlertFilter, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[AlertRow]:
    """Newest first; keyset pagination on (received_at, id) so pages stay stable while alerts arrive."""
    stmt = filtered(select(AlertRow), where)
    if after is not None:
        stmt = stmt.where(
            (AlertRow.received_at < after[0])
            | ((AlertRow.received_at == after[0]) & (AlertRow.id < after[1]))
        )
    stmt = stmt.order_by(AlertRow.received_at.desc(), AlertRow.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def get(session: AsyncSession, alert_id: uuid.UUID, *, for_update: bool = False) -> AlertRow | None:
    stmt = select(AlertRow).where(AlertRow.id == alert_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def history(session: AsyncSession, alert_id: uuid.UUID) -> list[AlertStatusChange]:
    stmt = (
        select(AlertStatusChange).where(AlertStatusChange.alert_id == alert_id).order_by(AlertStatusChange.id)
    )
    return list((await session.execute(stmt)).scalars())


async def set_status(session: AsyncSession, *, change: AlertStatusChange) -> None:
    session.add(change)
    await session.execute(
        update(AlertRow)
        .where(AlertRow.id == change.alert_id)
        .values(status=change.to_status, status_changed_at=change.at, status_changed_by=change.actor)
    )
