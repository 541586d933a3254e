"""Alert rules: storing alerts from the scorer once (a later revision of an alert is merged into it), and
the triage state machine (each move audited)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts import repository
from services.coordination.alerts.models import AlertRow, AlertStatusChange
from services.kit.audit import service as audit
from services.kit.auth import Officer
from services.kit.errors import Conflict, NotFound
from streams.schemas.alerts import Alert

# new → triaged → dismissed | escalated. Dismissed and escalated are final for an alert; an
# escalated alert lives on in the case opened from it.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"triaged"}),
    "triaged": frozenset({"dismissed", "escalated"}),
    "dismissed": frozenset(),
    "escalated": frozenset(),
}


def to_row(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.alert_id,
        "typology": alert.typology,
        "score": alert.score,
        "reasons": alert.reasons,
        "recommended_actions": list(alert.recommended_actions),
        "subject": alert.subject.model_dump(mode="json", exclude_none=True),
        "triggering_event_ids": alert.triggering_event_ids,
        "amount_at_risk": Decimal(alert.amount_at_risk) if alert.amount_at_risk else None,
        "event_time": alert.event_time,
        "created_at": alert.created_at,
        "scorer_version": alert.scorer_version,
        "features": alert.features,
        "feature_set": alert.feature_set,
        "revision": alert.revision,
        "incident_id": alert.incident_id,
        "payments": [p.model_dump(mode="json") for p in alert.payments],
        "scam_typology": alert.scam_typology,
        "scam_typology_score": alert.scam_typology_score,
    }


@dataclass(frozen=True)
class Stored:
    new: int  # alerts not seen before
    updated: int  # stored alerts a later revision changed


async def store(session: AsyncSession, *, alerts: Sequence[Alert]) -> Stored:
    """Store alerts not seen before and merge later revisions into those stored (`merge`). A redelivered
    revision changes nothing, so the consumer may read a batch again. What the database refuses (a value
    no column holds: a merged amount at risk past NUMERIC(15, 2)) fails the whole batch: the consumer then
    stores its alerts one at a time and sets aside the one still refused, as any alert it cannot store."""
    by_id: dict[uuid.UUID, list[Alert]] = {}
    for alert in sorted(alerts, key=lambda a: a.revision):
        by_id.setdefault(alert.alert_id, []).append(alert)
    rows = await repository.lock(session, list(by_id))
    first = {i: revisions[0] for i, revisions in by_id.items() if i not in rows}
    inserted = await repository.insert_new(session, [to_row(a) for a in first.values()])
    # Inserted now, or by a concurrent consumer a moment ago (its row is then merged into like any other).
    rows |= await repository.lock(session, [i for i in by_id if i not in rows])
    now = datetime.now(UTC)
    updated = 0
    for alert_id, revisions in by_id.items():
        later = revisions[1:] if alert_id in inserted else revisions
        changed = [merge(rows[alert_id], alert, now) for alert in later]
        updated += any(changed) and alert_id not in inserted
    return Stored(len(inserted), updated)


def merge(row: AlertRow, alert: Alert, now: datetime) -> bool:
    """Merge a revision of a stored alert into it; True if anything changed. The payments are united by
    event ref and the amount at risk is the largest of their sum and what either side says, so revisions
    merge in any order, a repeated one changes nothing, and two revisions made from the same earlier one
    (two payments scored at once on two partitions) both count. A revision that tells more of a payment
    the alert holds (a call reported late: its event, a higher score, the kind call_then_transfer) is
    merged whatever its number, which may be one the stored revision has passed. The triage status is the
    operators'."""
    payments = {p["event_ref"]: p for p in row.payments}
    added = [p.model_dump(mode="json") for p in alert.payments if p.event_ref not in payments]
    incoming = Decimal(alert.amount_at_risk) if alert.amount_at_risk else None
    grows = incoming is not None and (row.amount_at_risk is None or incoming > row.amount_at_risk)
    triggers = set(alert.triggering_event_ids) - set(row.triggering_event_ids)
    # The scorer's rule: an alert stays call_then_transfer once it was; that revision explains the alert
    # unless a stronger one does (of equal scores, it: the call explains the payment).
    called = alert.typology == "call_then_transfer" != row.typology
    describes = alert.score > row.score or (called and alert.score == row.score)
    if not (added or grows or triggers or describes or called) and alert.revision <= row.revision:
        return False
    payments.update((p["event_ref"], p) for p in added)
    row.payments = sorted(payments.values(), key=lambda p: (p["occurred_at"], p["event_ref"]))
    total = sum((Decimal(p["amount"]) for p in row.payments), Decimal(0)) if row.payments else None
    amounts = [a for a in (row.amount_at_risk, incoming, total) if a is not None]
    row.amount_at_risk = max(amounts) if amounts else None
    row.triggering_event_ids = list(dict.fromkeys([*row.triggering_event_ids, *alert.triggering_event_ids]))
    row.recommended_actions = list(dict.fromkeys([*row.recommended_actions, *alert.recommended_actions]))
    # The episode is described by its strongest payment (a later ordinary one grows the amount at risk, it
    # does not explain the alert); of equal ones, the first stored (the stored revision number has moved on
    # with every merge: it does not tell which revision the description came from), unless the later one
    # makes the alert call_then_transfer.
    kinds = (row.typology, alert.typology)
    if describes:
        row.reasons = list(alert.reasons)
        row.typology = alert.typology
        row.scam_typology = alert.scam_typology or row.scam_typology
        row.scam_typology_score = alert.scam_typology_score or row.scam_typology_score
    if "call_then_transfer" in kinds:  # never back: a stronger revision from an older view may not say it
        row.typology = "call_then_transfer"
    row.score = max(row.score, alert.score)
    row.event_time = max(row.event_time, alert.event_time)
    row.incident_id = row.incident_id or alert.incident_id
    row.revision = max(row.revision + 1, alert.revision)
    row.updated_at = now
    return True


async def change_status(
    session: AsyncSession, *, alert_id: uuid.UUID, to: str, officer: Officer, note: str | None
) -> AlertRow:
    """Move an alert along the triage state machine; an illegal move raises Conflict naming the state."""
    alert = await repository.get(session, alert_id, for_update=True)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    if to not in TRANSITIONS[alert.status]:
        raise Conflict(
            f"alert is {alert.status}; it cannot become {to}",
            details={"current_status": alert.status, "allowed": sorted(TRANSITIONS[alert.status])},
        )
    change = AlertStatusChange(
        alert_id=alert_id,
        from_status=alert.status,
        to_status=to,
        actor=officer.subject,
        actor_role=officer.role,
        actor_unit=officer.unit,
        note=note,
        at=datetime.now(UTC),
    )
    await repository.set_status(session, change=change)
    await session.refresh(alert)
    await audit.record(
        session,
        actor=audit.Actor.of(officer),
        action=f"alert.{to}",
        entity_type="alert",
        entity_id=alert_id,
        legal_basis=note,
        before={"status": change.from_status},
        after={"status": to, "note": note},
    )
    return alert
