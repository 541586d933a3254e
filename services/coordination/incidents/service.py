"""Incident rules: an incident is read from its alerts, and triaging it moves each of its alerts along
the alerts' own state machine (each move recorded as for a single alert)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts import repository as alerts_repo
from services.coordination.alerts import service as alerts
from services.coordination.alerts.models import AlertRow
from services.coordination.alerts.repository import AlertFilter
from services.coordination.alerts.schemas import AlertRead
from services.coordination.incidents import repository
from services.coordination.incidents.schemas import IncidentRead
from services.kit.auth import Officer
from services.kit.errors import NotFound

VICTIM = "mule_fan_in"  # the one typology whose subject is the mule, not a victim


def _unit(who: Officer) -> str | None:
    return None if who.role == "auditor" else who.unit


def _read(
    ident: str,
    key: str,
    rows: list[AlertRow],
    totals: repository.Totals,
    cases: dict[uuid.UUID, list[uuid.UUID]],
) -> IncidentRead:
    kind = "episode" if key.startswith("episode:") else "mule"
    institution = account = None
    if kind == "mule":
        # The account at the centre, as the alerts name it (the key may be the scorer's opaque id).
        top = rows[0].subject
        own = rows[0].typology == VICTIM
        institution = top.get("institution" if own else "payee_institution")
        account = top.get("account" if own else "payee_account")
    # Over every alert, not only the members shown: the victims' payments, else what the account took.
    amount: Decimal | None = (
        totals.victims_amount if totals.victims_amount is not None else totals.mule_amount
    )
    actions = list(dict.fromkeys(a for r in rows for a in r.recommended_actions))
    case_ids = list(dict.fromkeys(c for r in rows for c in cases.get(r.id, [])))
    return IncidentRead(
        id=ident,
        kind=kind,
        institution=institution,
        account=account,
        typologies=sorted({r.typology for r in rows}),
        alerts=totals.alerts,
        victims=totals.victims,
        new=totals.new,
        open=totals.open,
        max_score=max(r.score for r in rows),
        amount_at_risk=amount,
        recommended_actions=actions,
        first_received_at=totals.first_received_at,
        last_received_at=totals.last_received_at,
        top=AlertRead.model_validate(rows[0]),
        members=[AlertRead.model_validate(r) for r in rows],
        case_ids=case_ids,
    )


async def page(session: AsyncSession, *, where: AlertFilter, limit: int, who: Officer) -> list[IncidentRead]:
    """The most recently active incidents with an alert matching the filters."""
    ids = await repository.newest_ids(session, where=where, limit=limit)
    return await _load(session, ids=ids, where=where, who=who)


async def _load(
    session: AsyncSession, *, ids: list[str], where: AlertFilter, who: Officer
) -> list[IncidentRead]:
    found = await repository.members(session, ids=ids, where=where)
    counts = await repository.counts(session, ids=ids, where=where)
    alert_ids = [r.id for _, rows in found.values() for r in rows]
    cases = await repository.linked_cases(session, alert_ids=alert_ids, unit=_unit(who))
    return [_read(i, found[i][0], found[i][1], counts[i], cases) for i in ids if i in found and i in counts]


async def get(session: AsyncSession, *, ident: str, who: Officer) -> IncidentRead:
    found = await _load(session, ids=[ident], where=AlertFilter(), who=who)
    if not found:
        raise NotFound(f"no incident {ident}")
    return found[0]


async def change_status(
    session: AsyncSession, *, ident: str, to: str, officer: Officer, note: str | None
) -> int:
    """Move every alert of the incident that is still open to `to` (through `triaged` when it is new);
    returns how many alerts moved. An incident with nothing open is NotFound."""
    ids = await repository.open_alert_ids(session, ident=ident)
    if not ids:
        raise NotFound(f"no incident {ident} with open alerts")
    moved = 0
    for alert_id in ids:
        row = await alerts_repo.get(session, alert_id, for_update=True)
        status = row.status if row is not None else to
        if status == to:
            continue
        if status == "new" and to != "triaged":
            await alerts.change_status(session, alert_id=alert_id, to="triaged", officer=officer, note=note)
        await alerts.change_status(session, alert_id=alert_id, to=to, officer=officer, note=note)
        moved += 1
    return moved
