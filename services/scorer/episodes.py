"""One alert per scam episode (docs/alerts.md). A victim's later payments update the open alert (a new
revision with the payments so far, the amount at risk grown) instead of raising new alerts.

Two stages know the episode: stage one reads the person's own alerts back from the alerts topic (keyed by
person, so co-partitioned with their events) and tells stage two, with each money-out, the alert still
open (`open_episode`); stage two also remembers, per payee account, the payers it alerted about, which
covers the moment before an alert comes back round. Both stages' state is snapshotted with the rest."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from models.features.account import EPISODE_S
from models.features.person import AlertSeen, MoneyOut, PaidSeen, PersonState
from streams import keys
from streams.schemas.alerts import MAX_PAYMENTS, Alert, AlertPayment, alert_id_for, incident_id_for
from streams.schemas.movements import Movement, OpenEpisode


def remember(person: PersonState, alert: Alert) -> None:
    """Stage one: the person's alert, or a later revision of it, as the alerts topic brings it back."""
    current = person.alert
    if current is not None:
        if current.alert_id == str(alert.alert_id) and current.revision >= alert.revision:
            return  # an older revision, or a repeat
        if current.alert_id != str(alert.alert_id) and current.last_at > alert.event_time.timestamp():
            return  # an older episode's alert, late
    person.alert = AlertSeen(
        alert_id=str(alert.alert_id),
        revision=alert.revision,
        incident_id=str(alert.incident_id or ""),
        last_at=alert.event_time.timestamp(),
        kind=alert.typology,
        payments=[_seen(p) for p in alert.payments],
    )


def open_episode(person: PersonState, money: MoneyOut) -> OpenEpisode | None:
    """Stage one: the person's alert this money-out may continue, if it is still open."""
    alert = person.alert
    if alert is None or abs(money.at - alert.last_at) > EPISODE_S:
        return None
    return OpenEpisode(
        alert_id=uuid.UUID(alert.alert_id),
        revision=alert.revision,
        incident_id=uuid.UUID(alert.incident_id) if alert.incident_id else None,
        payments=[_payment(p) for p in alert.payments],
        typology=alert.kind,
    )


@dataclass(frozen=True)
class Raised:
    """What stage two sends: a new alert (revision 1) or the next revision of an open one."""

    alert_id: uuid.UUID
    revision: int
    incident_id: uuid.UUID
    payments: list[AlertPayment]
    kind: str  # the alert's typology: a revision stays call_then_transfer once it was

    @property
    def amount(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal(0))


@dataclass(frozen=True)
class _Open:
    alert_id: uuid.UUID
    revision: int
    incident_id: uuid.UUID | None
    payments: list[AlertPayment]
    kind: str
    last_at: float


def decide(
    move: Movement, local: AlertSeen | None, *, alertable: bool, may_open: bool, kind: str
) -> Raised | None:
    """Stage two, for a scored inflow: the next revision of the open alert (the one this payee account
    remembers for the payer, or the one stage one told of, whichever is newer) if the payment continues
    the episode: to a payee of the episode, or alertable itself. Else a new alert if the payment is
    alertable and `may_open`; else nothing. A payment the alert holds already (a rescore after a late
    call, a replay) raises nothing."""
    assert move.payer_phone is not None
    this = AlertPayment(
        event_ref=move.event_ref,
        amount=Decimal(f"{move.amount:.2f}"),
        occurred_at=move.occurred_at,
        payee_account=move.account,
        payee_institution=move.institution,
    )
    at = move.occurred_at.timestamp()
    candidates = []
    if local is not None and abs(at - local.last_at) <= EPISODE_S:
        incident = uuid.UUID(local.incident_id) if local.incident_id else None
        payments = [_payment(p) for p in local.payments]
        candidates.append(
            _Open(uuid.UUID(local.alert_id), local.revision, incident, payments, local.kind, local.last_at)
        )
    if (told := move.episode) is not None:
        last = max((p.occurred_at.timestamp() for p in told.payments), default=0.0)
        candidates.append(
            _Open(told.alert_id, told.revision, told.incident_id, list(told.payments), told.typology, last)
        )
    if candidates:
        # The same alert seen twice: its latest revision; two alerts: the newer episode.
        base = max(
            candidates,
            key=lambda c: (
                (c.revision, c.last_at)
                if len({x.alert_id for x in candidates}) == 1
                else (c.last_at, c.revision)
            ),
        )
        if any(p.event_ref == this.event_ref for p in base.payments):
            return None
        same_payee = any(
            (p.payee_institution, p.payee_account) == (this.payee_institution, this.payee_account)
            for p in base.payments
        )
        if not (alertable or same_payee):
            return None  # an ordinary payment while an episode is open
        return Raised(
            base.alert_id,
            base.revision + 1,
            base.incident_id or incident_id_for(move.institution, move.account),
            [*base.payments, this][-MAX_PAYMENTS:],
            "call_then_transfer" if "call_then_transfer" in (base.kind, kind) else kind,
        )
    if not (alertable and may_open):
        return None
    return Raised(
        alert_id_for("episode", keys.person_key(move.payer_phone).decode(), move.event_ref),
        1,
        incident_id_for(move.institution, move.account),
        [this],
        kind,
    )


def seen(raised: Raised, at: float) -> AlertSeen:
    """What stage two keeps of an alert it sent, on the payee's account."""
    return AlertSeen(
        alert_id=str(raised.alert_id),
        revision=raised.revision,
        incident_id=str(raised.incident_id),
        last_at=at,
        kind=raised.kind,
        payments=[_seen(p) for p in raised.payments],
    )


def _seen(p: AlertPayment) -> PaidSeen:
    return PaidSeen(
        p.event_ref,
        float(p.amount),
        p.occurred_at.timestamp(),
        p.payee_institution or "",
        p.payee_account or "",
    )


def _payment(p: PaidSeen) -> AlertPayment:
    return AlertPayment(
        event_ref=p.ref,
        amount=Decimal(f"{p.amount:.2f}"),
        occurred_at=datetime.fromtimestamp(p.at, UTC),
        payee_account=p.payee_account or None,
        payee_institution=p.payee_institution or None,
    )
