"""One alert per scam episode (docs/alerts.md). A victim's later payments update the open alert (a new
revision with the payments so far, the amount at risk grown) instead of raising new alerts.

Two stages know the episode: stage one reads the person's own alerts back from the alerts topic (keyed by
person, so co-partitioned with their events) and tells stage two, with each money-out, the alert still
open (`open_episode`); stage two also remembers, per payee account, the payers it alerted about, which
covers the moment before an alert comes back round. Before stage one hears of an alert, a victim's
payments to two payees (a second apart, or a backlog caught up after a restart) are scored on two
partitions of stage two at once: both may raise one, so stage one names the id the person's next alert
takes (`opening`), and both reach coordination as revisions of the same alert. Both stages' state is
snapshotted with the rest."""

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
    if person.next_alert == str(alert.alert_id):
        person.next_alert = None  # raised: the next alert, after this episode, takes another id
    current = person.alert
    payments = [_seen(p) for p in alert.payments]
    if current is not None and current.alert_id == str(alert.alert_id):
        # Revisions made apart (two payees' partitions) each hold their own payments: keep them all.
        known = {p.ref for p in payments}
        payments += [p for p in current.payments if p.ref not in known]
        if current.revision >= alert.revision and len(payments) == len(current.payments):
            return  # an older revision, or a repeat
    elif current is not None and current.last_at > alert.event_time.timestamp():
        return  # an older episode's alert, late
    else:
        current = None  # another alert: this one replaces it
    payments.sort(key=lambda p: (p.at, p.ref))
    newer = current if current is not None and current.revision > alert.revision else None
    person.alert = AlertSeen(
        alert_id=str(alert.alert_id),
        revision=newer.revision if newer else alert.revision,
        incident_id=newer.incident_id if newer else str(alert.incident_id or ""),
        last_at=max(alert.event_time.timestamp(), current.last_at if current else 0.0),
        kind=newer.kind if newer else alert.typology,
        payments=payments[-MAX_PAYMENTS:],
    )


def opening(person: PersonState, phone: str, money: MoneyOut, *, rescore: bool) -> uuid.UUID | None:
    """Stage one: the id the person's next alert takes, named by their first money-out since their last
    alert came back. Every alert stage two raises for the person before stage one hears of the first
    shares it; the alert's consumers unite its revisions (docs/alerts.md). Never named by a payment seen
    before (scored again) nor by one no later than the last alert's newest payment: that one may have
    named the last alert, whose id a new episode must not take. None: stage two names it by the payment."""
    last = person.alert
    if person.next_alert is None and not rescore and (last is None or money.at > last.last_at):
        person.next_alert = str(alert_id_for("episode", keys.person_key(phone).decode(), money.ref))
    return uuid.UUID(person.next_alert) if person.next_alert is not None else None


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
    score: float  # the highest score the alert was sent with, this revision's included
    hard: list[str]  # the hard-rule reasons the alert gave, this revision's included

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
    score: float = 0.0  # unknown (0) as stage one tells of it
    hard: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scored:
    """What the model and the hard rules made of the payment."""

    score: float
    hard: list[str]  # the hard rules' reasons
    alertable: bool
    kind: str  # its own typology (call_then_transfer after a suspicious call)


def decide(move: Movement, local: AlertSeen | None, scored: Scored, *, may_open: bool) -> Raised | None:
    """Stage two, for a scored inflow: the next revision of the open alert (the one this payee account
    remembers for the payer, or the one stage one told of, whichever is newer) if the payment continues
    the episode: to a payee of the episode, or alertable itself. Else a new alert if the payment is
    alertable and `may_open`; else nothing. A payment the alert holds already (scored again after a late
    call, SIM change, link SMS or login, or replayed) is a revision only if it tells more (`_rescored`),
    else nothing."""
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
            _Open(
                uuid.UUID(local.alert_id),
                local.revision,
                incident,
                payments,
                local.kind,
                local.last_at,
                local.score,
                tuple(local.hard),
            )
        )
    if (told := move.episode) is not None:
        last = max((p.occurred_at.timestamp() for p in told.payments), default=0.0)
        candidates.append(
            _Open(told.alert_id, told.revision, told.incident_id, list(told.payments), told.typology, last)
        )
    if candidates:
        if len({c.alert_id for c in candidates}) == 1:
            base = _united(candidates)  # the same alert seen twice: its payments from both
        else:
            base = max(candidates, key=lambda c: (c.last_at, c.revision))  # two alerts: the newer episode
        if any(p.event_ref == this.event_ref for p in base.payments):
            return _rescored(base, move, scored)
        same_payee = any(
            (p.payee_institution, p.payee_account) == (this.payee_institution, this.payee_account)
            for p in base.payments
        )
        if not (scored.alertable or same_payee):
            return None  # an ordinary payment while an episode is open
        return _revision(base, move, scored, [*base.payments, this][-MAX_PAYMENTS:])
    if not (scored.alertable and may_open):
        return None
    return Raised(
        move.opens or alert_id_for("episode", keys.person_key(move.payer_phone).decode(), move.event_ref),
        1,
        incident_id_for(move.institution, move.account),
        [this],
        scored.kind,
        scored.score,
        list(scored.hard),
    )


def _rescored(base: _Open, move: Movement, scored: Scored) -> Raised | None:
    """A payment the alert holds, scored again (a call, SIM change, link SMS or login before it read late; or
    replayed): the next revision if it tells the alert more than it said (its kind becomes
    call_then_transfer, a hard rule fires that had not, or the score rises above the alert's highest), so
    the police and the citizen's warning get the call and its reasons; else nothing (a replay, a call that
    changes nothing)."""
    if not scored.alertable:
        return None
    raised = _revision(base, move, scored, base.payments)
    if (raised.kind, raised.score, raised.hard) == (base.kind, base.score, list(base.hard)):
        return None
    return raised


def _revision(base: _Open, move: Movement, scored: Scored, payments: list[AlertPayment]) -> Raised:
    return Raised(
        base.alert_id,
        base.revision + 1,
        base.incident_id or incident_id_for(move.institution, move.account),
        payments,
        "call_then_transfer" if "call_then_transfer" in (base.kind, scored.kind) else scored.kind,
        max(base.score, scored.score),
        list(dict.fromkeys([*base.hard, *scored.hard])),
    )


def _united(same: list[_Open]) -> _Open:
    """One alert as two sides know it (stage one, this partition): its latest revision, every payment
    either holds."""
    newest = max(same, key=lambda c: (c.revision, c.last_at))
    payments = {p.event_ref: p for c in same for p in c.payments}
    ordered = sorted(payments.values(), key=lambda p: (p.occurred_at, p.event_ref))[-MAX_PAYMENTS:]
    return _Open(
        newest.alert_id,
        newest.revision,
        newest.incident_id,
        ordered,
        newest.kind,
        max(c.last_at for c in same),
        max(c.score for c in same),
        tuple(dict.fromkeys(r for c in same for r in c.hard)),
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
        score=raised.score,
        hard=list(raised.hard),
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
