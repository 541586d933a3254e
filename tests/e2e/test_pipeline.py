"""End to end on the real components: institution events in through HTTP, alert out in PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from models.features.vector import FEATURE_NAMES, FEATURE_SET_HASH
from services.coordination.alerts.models import AlertRow
from streams import topics
from streams.schemas.alerts import incident_id_for
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import drained, eventually

pytestmark = pytest.mark.integration


async def _drained(infra: Infra) -> None:
    """Everything posted so far went through the scorer's two stages and the coordination alerts
    consumer, each committed after its effects: every alert it raises is stored by now."""
    prefix = infra.prefix
    await drained(
        infra.kafka,
        (f"{prefix}scorer-events", [topics.name(t, prefix) for t in topics.EVENT_TOPICS.values()]),
        (f"{prefix}scorer-accounts", [topics.name(topics.TRANSFERS_BY_ACCOUNT, prefix)]),
        (f"{prefix}coordination-alerts", [topics.name(topics.ALERTS, prefix)]),
    )


async def _alerts_for(sessions, predicate) -> list[AlertRow]:
    async with sessions() as s:
        rows = list((await s.execute(select(AlertRow))).scalars())
    return [r for r in rows if predicate(r)]


def _calls_scored() -> float:
    return REGISTRY.get_sample_value("stopline_scorer_events_total", {"type": "telecom.call"}) or 0.0


async def test_impersonation_scam_gives_exactly_one_alert(infra, ingest, scorer, coordination, sessions):
    telecom, tel_headers = await f.institution(sessions, "telecom")
    bank, bank_headers = await f.institution(sessions, "bank")
    victim, victim_account, mule = f.phone(), f.account(), f.account("MULE")
    # Ordinary life first: a friend calls, the victim pays a known payee.
    friend = f.phone()
    history = [f.call(victim, caller=friend, start=f.minutes_ago(300), minutes=4)]
    await ingest.post("/v1/events", json={"events": history}, headers=tel_headers)
    # The scam: a 35-minute call from a number never seen, then two large transfers to a new payee.
    scam_call = f.call(victim, start=f.minutes_ago(40), minutes=35)
    transfers = [
        f.transfer(
            victim, payer_account=victim_account, payee_account=mule, amount=amount, at=f.minutes_ago(m)
        )
        for amount, m in (("30000.00", 3), ("18000.00", 2))
    ]
    batch = {"events": [scam_call]}
    calls_before = _calls_scored()
    assert (await ingest.post("/v1/events", json=batch, headers=tel_headers)).json()["accepted"] == 1
    # The call reached the scorer before the money moved, as in the story. (The two topics are read
    # independently; a call seen only after the payment is test_call_reported_after_the_transfer.)
    await eventually(lambda: _calls_scored() > calls_before, timeout_s=15)
    assert (await ingest.post("/v1/events", json={"events": transfers}, headers=bank_headers)).json()[
        "accepted"
    ] == 2
    # The same batches again (an institution retrying) must not give a second alert.
    assert (await ingest.post("/v1/events", json=batch, headers=tel_headers)).json()["accepted"] == 0

    def mine(r: AlertRow) -> bool:
        return r.subject.get("phone") == victim

    # One alert for the episode: the second transfer comes as its revision 2, merged into the stored alert.
    await eventually(lambda: _alerts_for(sessions, lambda r: mine(r) and r.revision == 2), timeout_s=15)
    await _drained(infra)  # the retried batch and all the scorer made of the events are through
    alerts = await _alerts_for(sessions, mine)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.typology == "call_then_transfer"
    assert alert.status == "new"
    assert alert.subject["payee_account"] == mule
    assert alert.incident_id == incident_id_for("bank-x", mule)  # the incident around the mule account
    assert set(alert.triggering_event_ids) == {
        f"{telecom}:{scam_call['event_id']}",
        f"{bank}:{transfers[0]['event_id']}",
        f"{bank}:{transfers[1]['event_id']}",
    }
    assert alert.amount_at_risk == Decimal("48000.00") and len(alert.payments) == 2
    assert "warn_citizen" in alert.recommended_actions
    assert any("35-minute call" in reason for reason in alert.reasons)
    # The model's input travels with the alert, for the case outcome to label it (models.training.feedback).
    assert alert.feature_set == FEATURE_SET_HASH
    assert alert.features is not None and len(alert.features) == len(FEATURE_NAMES)

    # The operator sees it through the API.
    listed = await coordination.get(
        "/v1/alerts", params={"typology": "call_then_transfer", "limit": 500}, headers=f.officer()
    )
    assert str(alert.id) in {a["id"] for a in listed.json()["items"]}


async def test_call_reported_after_the_transfer_still_alerts(infra, ingest, scorer, coordination, sessions):
    """Telecoms report a call when it ends: the victim often pays while still on the phone."""
    _, tel_headers = await f.institution(sessions, "telecom")
    _, bank_headers = await f.institution(sessions, "bank")
    victim = f.phone()
    transfer = f.transfer(
        victim,
        payer_account=f.account(),
        payee_account=f.account("MULE"),
        amount="60000.00",
        at=f.minutes_ago(10),
    )
    await ingest.post("/v1/events", json={"events": [transfer]}, headers=bank_headers)
    await _drained(infra)
    assert await _alerts_for(sessions, lambda r: r.subject.get("phone") == victim) == []
    call = f.call(victim, start=f.minutes_ago(30), minutes=25, reported=True)
    await ingest.post("/v1/events", json={"events": [call]}, headers=tel_headers)
    alerts = await eventually(
        lambda: _alerts_for(sessions, lambda r: r.subject.get("phone") == victim), timeout_s=15
    )
    assert len(alerts) == 1
    assert any("during the call" in reason for reason in alerts[0].reasons)


async def test_ordinary_activity_gives_no_alert(infra, ingest, scorer, coordination, sessions):
    _, tel_headers = await f.institution(sessions, "telecom")
    _, bank_headers = await f.institution(sessions, "bank")
    person, payee = f.phone(), f.account()
    friend = f.phone()
    # A known caller, then a large transfer to someone paid before: nothing suspicious. (The call is short:
    # a large payment during a 40-minute call is what impersonation victims do, and scammers' numbers are
    # often known from a first contact, so the model rightly finds that suspicious whoever calls.)
    await ingest.post(
        "/v1/events",
        json={"events": [f.call(person, caller=friend, start=f.minutes_ago(600), minutes=2)]},
        headers=tel_headers,
    )
    await ingest.post(
        "/v1/events",
        json={
            "events": [
                f.transfer(
                    person,
                    payer_account=f.account(),
                    payee_account=payee,
                    amount="900",
                    at=f.minutes_ago(500),
                )
            ]
        },
        headers=bank_headers,
    )
    await ingest.post(
        "/v1/events",
        json={"events": [f.call(person, caller=friend, start=f.minutes_ago(30), minutes=3)]},
        headers=tel_headers,
    )
    marker = f.transfer(
        person, payer_account=f.account(), payee_account=payee, amount="80000", at=f.minutes_ago(1)
    )
    await ingest.post("/v1/events", json={"events": [marker]}, headers=bank_headers)
    await _drained(infra)
    assert await _alerts_for(sessions, lambda r: r.subject.get("phone") == person) == []


async def test_mule_account_collecting_from_many_gives_one_alert(
    infra, ingest, scorer, coordination, sessions
):
    mule_bank, mule_headers = await f.institution(sessions, "bank")
    _, bank_headers = await f.institution(sessions, "bank")
    mule, mule_phone = f.account("MULE"), f.phone()
    inflows = [
        f.transfer(
            f.phone(),
            payer_account=f.account(),
            payee_account=mule,
            amount="8000",
            at=f.minutes_ago(20 - i),
            payee_bank=mule_bank,
        )
        for i in range(8)
    ]
    await ingest.post("/v1/events", json={"events": inflows}, headers=bank_headers)
    outflows = [
        f.transfer(
            mule_phone, payer_account=mule, payee_account=f.account("L2"), amount="30000", at=f.minutes_ago(m)
        )
        for m in (5, 4)
    ]
    await ingest.post("/v1/events", json={"events": outflows}, headers=mule_headers)

    def about_mule(r: AlertRow) -> bool:
        # The account-side alert (no phone). The model may also score the mule's own payouts as payments
        # at risk; those alerts name the mule as payer and are not the fan-in finding tested here.
        return r.typology == "mule_fan_in" and r.subject.get("account") == mule and not r.subject.get("phone")

    await eventually(lambda: _alerts_for(sessions, about_mule), timeout_s=15)
    await _drained(infra)
    alerts = await _alerts_for(sessions, about_mule)
    assert len(alerts) == 1
    assert alerts[0].subject["institution"] == mule_bank
    assert any("8 different people" in reason for reason in alerts[0].reasons)
    assert alerts[0].features is None and alerts[0].feature_set is None  # a rule, not the model
    assert (
        "recommend_stop_payment" in alerts[0].recommended_actions
        or "notify_police" in alerts[0].recommended_actions
    )
