"""SQL of incidents: alerts grouped by `grouping.incident_key`."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, not_, select
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
) -> dict[str, tuple[str, list[AlertRow]]]:
    """incident id → (key, its matching alerts: highest score first, at most MEMBERS)."""
    if not ids:
        return {}
    ident, key = incident_id().label("incident"), incident_key().label("key")
    rank = func.row_number().over(
        partition_by=ident, order_by=(AlertRow.score.desc(), AlertRow.received_at.desc())
    )
    inner = (
        filtered(select(AlertRow.id, ident, key, rank.label("rank")), where)
        .where(incident_id().in_(ids))
        .subquery()
    )
    stmt = (
        select(AlertRow, inner.c.incident, inner.c.key)
        .join(inner, inner.c.id == AlertRow.id)
        .where(inner.c.rank <= MEMBERS)
        .order_by(inner.c.incident, inner.c.rank)
    )
    out: dict[str, tuple[str, list[AlertRow]]] = {}
    for row, ident_, key_ in await session.execute(stmt):
        out.setdefault(ident_, (key_, []))[1].append(row)
    return out


@dataclass(frozen=True)
class Totals:
    """An incident's figures over every matching alert (its members are the highest-scoring few)."""

    alerts: int
    new: int
    open: int
    victims: int  # distinct phones of victims' alerts
    victims_amount: Decimal | None  # the victims' alerts' amounts at risk, summed
    mule_amount: Decimal | None  # the largest a mule_fan_in alert says the account collected
    first_received_at: datetime
    last_received_at: datetime


async def counts(session: AsyncSession, *, ids: list[str], where: AlertFilter) -> dict[str, Totals]:
    """Per incident, over every matching alert: by status, distinct victims, amounts, first and last."""
    if not ids:
        return {}
    ident = incident_id().label("incident")
    victim = AlertRow.typology != "mule_fan_in"
    stmt = filtered(
        select(
            ident,
            func.count().label("alerts"),
            func.count().filter(AlertRow.status == "new").label("new"),
            func.count().filter(AlertRow.status.in_(OPEN)).label("open"),
            func.count(func.distinct(AlertRow.subject["phone"].astext)).filter(victim).label("victims"),
            func.sum(AlertRow.amount_at_risk).filter(victim).label("victims_amount"),
            func.max(AlertRow.amount_at_risk).filter(not_(victim)).label("mule_amount"),
            func.min(AlertRow.received_at).label("first"),
            func.max(AlertRow.received_at).label("last"),
        ),
        where,
    ).where(incident_id().in_(ids))
    stmt = stmt.group_by(ident)
    return {
        r.incident: Totals(
            r.alerts, r.new, r.open, r.victims, r.victims_amount, r.mule_amount, r.first, r.last
        )
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
