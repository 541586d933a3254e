"""SQL of incidents: alerts grouped by `grouping.incident_key`."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts.models import AlertRow
from services.coordination.alerts.repository import AlertFilter, filtered
from services.coordination.cases.models import Case, CaseAlert
from services.coordination.incidents.grouping import incident_id, incident_key

MEMBERS = 50
OPEN = ("new", "triaged")


def of_queue(
    status: str | None,
    typology: str | None,
    min_score: float | None,
    since: datetime | None,
    until: datetime | None,
) -> AlertFilter:
    """The alerts an incident queue shows: `status` is an alert's, or "open" (new or triaged)."""
    if status == "open":
        return AlertFilter(None, typology, min_score, None, since, until, statuses=OPEN)
    return AlertFilter(status, typology, min_score, None, since, until)


async def newest_ids(session: AsyncSession, *, where: AlertFilter, limit: int) -> list[str]:
    """Ids of the incidents with a matching alert, the most recently active first."""
    ident = incident_id().label("incident")
    inner = filtered(select(ident, AlertRow.received_at), where).subquery()
    stmt = (
        select(inner.c.incident)
        .group_by(inner.c.incident)
        .order_by(func.max(inner.c.received_at).desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def members(
    session: AsyncSession, *, ids: list[str], where: AlertFilter
) -> dict[str, tuple[str, list[AlertRow], int]]:
    """incident id → (key, its matching alerts, highest score first and at most MEMBERS, total count)."""
    if not ids:
        return {}
    ident, key = incident_id().label("incident"), incident_key().label("key")
    rank = func.row_number().over(
        partition_by=ident, order_by=(AlertRow.score.desc(), AlertRow.received_at.desc())
    )
    total = func.count().over(partition_by=ident)
    inner = (
        filtered(select(AlertRow.id, ident, key, rank.label("rank"), total.label("total")), where)
        .where(incident_id().in_(ids))
        .subquery()
    )
    stmt = (
        select(AlertRow, inner.c.incident, inner.c.key, inner.c.total)
        .join(inner, inner.c.id == AlertRow.id)
        .where(inner.c.rank <= MEMBERS)
        .order_by(inner.c.incident, inner.c.rank)
    )
    out: dict[str, tuple[str, list[AlertRow], int]] = {}
    for row, ident_, key_, total_ in await session.execute(stmt):
        entry = out.setdefault(ident_, (key_, [], total_))
        entry[1].append(row)
    return out


async def counts(session: AsyncSession, *, ids: list[str], where: AlertFilter) -> dict[str, dict[str, int]]:
    """Per incident: matching alerts by status, and distinct victims (phones of victims' alerts)."""
    if not ids:
        return {}
    ident = incident_id().label("incident")
    victims = func.count(func.distinct(AlertRow.subject["phone"].astext)).filter(
        AlertRow.typology != "mule_fan_in"
    )
    stmt = filtered(
        select(
            ident,
            func.count().label("alerts"),
            func.count().filter(AlertRow.status == "new").label("new"),
            func.count().filter(AlertRow.status.in_(OPEN)).label("open"),
            victims.label("victims"),
        ),
        where,
    ).where(incident_id().in_(ids))
    stmt = stmt.group_by(ident)
    return {
        r.incident: {"alerts": r.alerts, "new": r.new, "open": r.open, "victims": r.victims}
        for r in await session.execute(stmt)
    }


async def linked_cases(
    session: AsyncSession, *, alert_ids: list[uuid.UUID], unit: str | None
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """alert id → the cases (of `unit`; every unit's when None) it is linked to."""
    if not alert_ids:
        return {}
    stmt = (
        select(CaseAlert.alert_id, CaseAlert.case_id)
        .join(Case, Case.id == CaseAlert.case_id)
        .where(CaseAlert.alert_id.in_(alert_ids))
        .order_by(CaseAlert.linked_at)
    )
    if unit is not None:
        stmt = stmt.where(Case.unit == unit)
    out: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for alert_id, case_id in await session.execute(stmt):
        out[alert_id].append(case_id)
    return out


async def open_alert_ids(session: AsyncSession, *, ident: str) -> list[uuid.UUID]:
    """The incident's alerts that can still be triaged, oldest first."""
    stmt = (
        select(AlertRow.id)
        .where(AlertRow.status.in_(OPEN), incident_id() == ident)
        .order_by(AlertRow.received_at, AlertRow.id)
    )
    return list((await session.execute(stmt)).scalars())
