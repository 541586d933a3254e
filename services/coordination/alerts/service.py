"""Alert rules: storing alerts from the scorer once, and the triage state machine."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts import repository
from services.coordination.alerts.models import AlertRow, AlertStatusChange
from services.kit.auth import Officer
from services.kit.errors import Conflict, InvalidInput, NotFound
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
    }


async def store(session: AsyncSession, *, alerts: Sequence[Alert]) -> int:
    """Store alerts not seen before; a redelivered alert is a no-op. Returns the number stored."""
    unique = {a.alert_id: a for a in alerts}
    return await repository.insert_new(session, [to_row(a) for a in unique.values()])


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
    return alert


def encode_cursor(row: AlertRow) -> str:
    return base64.urlsafe_b64encode(f"{row.received_at.isoformat()}|{row.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        stamp, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "malformed cursor", details=[{"field": "cursor", "reason": "not from a previous page"}]
        ) from exc
