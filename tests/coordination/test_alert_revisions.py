"""One alert per scam episode: a later revision of an alert (the same id, the episode's next payment) is
merged into the stored alert (amount at risk and revision grow, payments united, triage kept) instead of
being dropped as a duplicate; a repeated or older revision changes nothing; alerts of one incident are
listed together."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.coordination.alerts import service
from services.coordination.alerts.models import AlertRow
from services.kit.db import unit_of_work
from streams import keys, topics
from streams.producer import Producer, Record
from streams.schemas.alerts import Alert, AlertPayment, Subject, incident_id_for
from tests import factories as f
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration


def payment(amount: str, minute: int) -> AlertPayment:
    return AlertPayment(
        event_ref=f"bank-a:{f.unique('tr')}",
        amount=Decimal(amount),
        occurred_at=f.minutes_ago(30 - minute),
        payee_account="MULE0001",
        payee_institution="bank-b",
    )


def revision(alert: Alert, number: int, payments: list[AlertPayment], **changes: Any) -> Alert:
    """The alert as the scorer sends it again after later payments of the episode."""
    total = sum((p.amount for p in payments), Decimal(0))
    return alert.model_copy(
        update={
            "revision": number,
            "payments": payments,
            "amount_at_risk": f"{total:.2f}",
            "triggering_event_ids": [alert.triggering_event_ids[0], *(p.event_ref for p in payments)],
            "event_time": max(p.occurred_at for p in payments),
            **changes,
        }
    )


def first(*payments: AlertPayment) -> Alert:
    phone = f.phone()
    return revision(
        f.alert(
            subject=Subject(phone=phone, payee_account="MULE0001", payee_institution="bank-b"),
            triggering_event_ids=[f"telecom-a:{f.unique('call')}"],
            incident_id=incident_id_for("bank-b", "MULE0001"),
            scam_typology="impersonation_police",
            scam_typology_score=0.7,
        ),
        1,
        list(payments),
    )


async def _store(sessions, *alerts: Alert) -> service.Stored:
    async with unit_of_work(sessions) as s:
        return await service.store(s, alerts=list(alerts))


async def _row(sessions, alert_id: uuid.UUID) -> AlertRow:
    async with sessions() as s:
        row = await s.get(AlertRow, alert_id)
        assert row is not None
        return row


async def test_a_later_revision_grows_the_alert_and_keeps_its_triage(sessions, coordination):
    p1, p2 = payment("30000.00", 0), payment("18000.00", 4)
    alert = first(p1)
    assert await _store(sessions, alert) == service.Stored(new=1, updated=0)
    triaged = await coordination.post(
        f"/v1/alerts/{alert.alert_id}/status", json={"status": "triaged"}, headers=f.officer()
    )
    assert triaged.status_code == 200

    later = revision(alert, 2, [p1, p2], score=0.97, reasons=["two payments to a new payee in 4 minutes"])
    assert await _store(sessions, later) == service.Stored(new=0, updated=1)
    row = await _row(sessions, alert.alert_id)
    assert (row.revision, row.amount_at_risk, row.status) == (2, Decimal("48000.00"), "triaged")
    assert [p["event_ref"] for p in row.payments] == [p1.event_ref, p2.event_ref]
    assert row.triggering_event_ids == later.triggering_event_ids
    assert (row.score, row.reasons) == (0.97, ["two payments to a new payee in 4 minutes"])
    assert row.updated_at is not None

    # Redelivered, or an older revision arriving late: nothing changes.
    assert await _store(sessions, later, alert) == service.Stored(new=0, updated=0)
    assert (await _row(sessions, alert.alert_id)).revision == 2

    got = (await coordination.get(f"/v1/alerts/{alert.alert_id}", headers=f.officer())).json()
    assert (got["revision"], got["amount_at_risk"], got["scam_typology"]) == (
        2,
        "48000.00",
        "impersonation_police",
    )
    assert len(got["payments"]) == 2 and got["incident_id"] == str(alert.incident_id)


async def test_two_revisions_from_the_same_one_both_count(sessions):
    """Two payments scored at once on two partitions each make revision 2 from revision 1: merged, every
    payment counts once and the stored revision still moves on."""
    p1, p2, p3 = payment("10000.00", 0), payment("5000.00", 2), payment("7000.00", 3)
    alert = first(p1)
    await _store(sessions, alert)
    await _store(sessions, revision(alert, 2, [p1, p2]))
    await _store(sessions, revision(alert, 2, [p1, p3]))
    row = await _row(sessions, alert.alert_id)
    assert row.amount_at_risk == Decimal("22000.00") and row.revision == 3
    assert sorted(p["event_ref"] for p in row.payments) == sorted([p1.event_ref, p2.event_ref, p3.event_ref])


async def test_revisions_in_one_batch_make_one_alert(sessions):
    p1, p2 = payment("2000.00", 0), payment("3000.00", 1)
    alert = first(p1)
    assert await _store(sessions, revision(alert, 2, [p1, p2]), alert) == service.Stored(new=1, updated=0)
    row = await _row(sessions, alert.alert_id)
    assert (row.revision, row.amount_at_risk, len(row.payments)) == (2, Decimal("5000.00"), 2)


async def test_a_mule_alert_grows_by_its_amount(sessions):
    """An account's own alert has no victim payments: a revision raises its amount at risk."""
    alert = f.alert(typology="mule_fan_in", amount_at_risk="40000.00", triggering_event_ids=["bank-a:x1"])
    await _store(sessions, alert)
    grown = alert.model_copy(update={"revision": 2, "amount_at_risk": "65000.00"})
    assert await _store(sessions, grown) == service.Stored(new=0, updated=1)
    assert (await _row(sessions, alert.alert_id)).amount_at_risk == Decimal("65000.00")


async def test_the_alerts_of_an_incident_are_listed_together(sessions, coordination):
    """A mule account's incident: its victims' alerts and its own share the incident id."""
    incident = incident_id_for("bank-c", f.account("MULE"))
    victims = [
        f.alert(subject=Subject(phone=f.phone()), incident_id=incident, triggering_event_ids=[f.unique("t")])
        for _ in range(3)
    ]
    mule = f.alert(typology="mule_fan_in", incident_id=incident, triggering_event_ids=[f.unique("t")])
    await _store(sessions, *victims, mule, f.alert(triggering_event_ids=[f.unique("t")]))
    page = await coordination.get("/v1/alerts", params={"incident_id": str(incident)}, headers=f.officer())
    assert {a["id"] for a in page.json()["items"]} == {str(a.alert_id) for a in [*victims, mule]}


async def test_a_revision_on_kafka_updates_the_stored_alert(infra, coordination, sessions):
    p1, p2 = payment("30000.00", 0), payment("20000.00", 5)
    alert = first(p1)
    later = revision(alert, 2, [p1, p2], event_time=f.now() + timedelta(seconds=1))
    producer = Producer(infra.kafka, client_id="test-revisions")
    await producer.start()
    try:
        # The same key as the scorer's: one partition, in order.
        key = keys.person_key(alert.subject.phone or "")
        topic = topics.name(topics.ALERTS, infra.prefix)
        await producer.send_all([Record(topic, m.model_dump_json().encode(), key) for m in (alert, later)])
    finally:
        await producer.stop()

    async def grown() -> bool:
        async with sessions() as s:
            row = await s.get(AlertRow, alert.alert_id)
            return row is not None and row.revision == 2

    await eventually(grown, timeout_s=15)
    assert (await _row(sessions, alert.alert_id)).amount_at_risk == Decimal("50000.00")


async def test_a_weaker_revision_grows_the_alert_but_keeps_what_explains_it(sessions):
    """A later ordinary payment to the episode's payee (scored low, sent because the payee is the
    episode's) adds its payment and amount; the reasons and kinds stay those of the strongest revision."""
    p1, p2 = payment("30000.00", 0), payment("200.00", 5)
    alert = first(p1).model_copy(update={"score": 0.99, "reasons": ["a long call from an unknown number"]})
    await _store(sessions, alert)
    weaker = revision(
        alert,
        2,
        [p1, p2],
        score=0.01,
        reasons=["a further payment to a payee of this alert's episode"],
        typology="suspicious_payment",
        scam_typology="investment",
        scam_typology_score=0.4,
    )
    assert await _store(sessions, weaker) == service.Stored(new=0, updated=1)
    row = await _row(sessions, alert.alert_id)
    assert (row.revision, row.amount_at_risk, row.score) == (2, Decimal("30200.00"), 0.99)
    assert row.reasons == ["a long call from an unknown number"]
    assert (row.typology, row.scam_typology) == (alert.typology, "impersonation_police")


async def test_a_late_calls_revision_makes_the_alert_call_then_transfer(sessions):
    """The transfer alerted on its own (a known mule: the hard rule's score); the call it was made during,
    reported when it ended, comes as a revision of the same payment with the same score. The alert becomes
    call_then_transfer, explained by the call, naming it, though its number is one the stored alert has
    passed (two revisions from the same one were merged)."""
    p1, p2, p3 = payment("50000.00", 0), payment("5000.00", 2), payment("7000.00", 3)
    alert = first(p1).model_copy(
        update={
            "typology": "suspicious_payment",
            "score": 0.95,
            "reasons": ["the payee account is a known mule account"],
            "triggering_event_ids": [p1.event_ref],
        }
    )
    await _store(sessions, alert, revision(alert, 2, [p1, p2]), revision(alert, 2, [p1, p3]))
    call = f"tel-a:{f.unique('call')}"
    reported = "the caller's number has been reported for fraud by its operator"
    late = alert.model_copy(
        update={
            "revision": 3,
            "typology": "call_then_transfer",
            "reasons": [reported, "the payee account is a known mule account"],
            "triggering_event_ids": [call, p1.event_ref],
        }
    )
    assert (await _row(sessions, alert.alert_id)).revision == 3
    assert await _store(sessions, late) == service.Stored(new=0, updated=1)
    row = await _row(sessions, alert.alert_id)
    assert (row.typology, row.reasons[0], row.score) == ("call_then_transfer", reported, 0.95)
    assert call in row.triggering_event_ids and row.amount_at_risk == Decimal("62000.00")
    assert await _store(sessions, late) == service.Stored(new=0, updated=0)  # redelivered: nothing more
    # A stronger revision built from an older view of the episode (another payee's partition) does not
    # say the call: it explains the alert now, which stays call_then_transfer.
    stronger = revision(alert, 4, [p1, payment("9000.00", 4)], score=0.97, reasons=["more"])
    assert await _store(sessions, stronger) == service.Stored(new=0, updated=1)
    row = await _row(sessions, alert.alert_id)
    assert (row.typology, row.reasons, row.score) == ("call_then_transfer", ["more"], 0.97)
