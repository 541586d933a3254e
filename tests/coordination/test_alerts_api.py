"""Alerts in the coordination service: stored once from Kafka, listed with filters and pages,
triaged along new → triaged → dismissed / escalated with who and when recorded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from services.coordination.alerts import service
from services.coordination.alerts.models import AlertRow
from services.kit.db import unit_of_work
from streams import topics
from streams.schemas.alerts import Alert, Subject
from tests import factories as f
from tests.kafka_tools import eventually
from tests.metrics import sample

pytestmark = pytest.mark.integration


def make_alert(*, typology: str = "call_then_transfer", score: float = 0.8) -> Alert:
    return f.alert(
        typology=typology,
        score=score,
        reasons=["the person had a 30-minute call from a number that had never called before"],
        subject=Subject(phone=f.phone(), account=f.account(), institution="bank-a"),
        triggering_event_ids=[f"telecom-a:{f.unique('c')}"],
        amount_at_risk="5000.00",
        scorer_version="test",
    )


async def _store(sessions, *alerts: Alert) -> None:
    async with unit_of_work(sessions) as s:
        await service.store(s, alerts=list(alerts))


async def test_alert_delivered_twice_on_kafka_is_stored_once(infra, coordination, sessions):
    alert, marker = make_alert(typology="suspicious_payment"), make_alert(typology="suspicious_payment")
    labels = {"typology": "suspicious_payment"}
    received = await sample(coordination, "stopline_coordination_alerts_received_total", **labels)
    stored = await sample(coordination, "stopline_coordination_alerts_stored_total")
    producer = AIOKafkaProducer(**infra.kafka.options())
    await producer.start()
    try:
        # One partition, in order: once the marker is stored, both deliveries of the alert were handled.
        for message in (alert, alert, marker):
            await producer.send_and_wait(
                topics.name(topics.ALERTS, infra.prefix), message.model_dump_json().encode(), partition=0
            )
    finally:
        await producer.stop()

    async def count(alert_id: uuid.UUID) -> int:
        async with sessions() as s:
            return int((await s.execute(select(func.count()).where(AlertRow.id == alert_id))).scalar_one())

    await eventually(lambda: count(marker.alert_id), timeout_s=10)
    got = await coordination.get(f"/v1/alerts/{alert.alert_id}", headers=f.officer())
    assert got.status_code == 200
    assert got.json()["status"] == "new"
    assert await count(alert.alert_id) == 1
    assert await sample(coordination, "stopline_coordination_alerts_received_total", **labels) == received + 3
    assert await sample(coordination, "stopline_coordination_alerts_stored_total") == stored + 2


async def test_filters_and_pages(coordination, sessions):
    mule_type = "mule_fan_in"
    # Other tests of the session store mule alerts too: the score filter is checked on this test's.
    began = datetime.now(UTC).isoformat()
    alerts = [make_alert(typology=mule_type, score=0.6 + i * 0.01) for i in range(7)]
    await _store(sessions, *alerts)
    ids = {str(a.alert_id) for a in alerts}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"typology": mule_type, "limit": 3, "min_score": 0.6, "max_score": 0.7}
        if cursor:
            params["cursor"] = cursor
        page = (await coordination.get("/v1/alerts", params=params, headers=f.officer())).json()
        seen += [a["id"] for a in page["items"]]
        assert all(a["typology"] == mule_type for a in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert ids <= set(seen)
    assert len(seen) == len(set(seen)), "pages overlap"
    high = (
        await coordination.get(
            "/v1/alerts",
            params={"min_score": 0.65, "typology": mule_type, "since": began},
            headers=f.officer(),
        )
    ).json()
    assert {a["id"] for a in high["items"]} == {str(a.alert_id) for a in alerts if a.score >= 0.65}
    since = datetime.now(UTC).isoformat()
    later = (
        await coordination.get(
            "/v1/alerts", params={"since": since, "typology": mule_type}, headers=f.officer()
        )
    ).json()
    assert later["items"] == []


async def test_triage_records_who_and_when(coordination, sessions):
    alert = make_alert()
    await _store(sessions, alert)
    operator = f.officer("operator", sub="officer-li")
    url = f"/v1/alerts/{alert.alert_id}/status"
    assert (await coordination.post(url, json={"status": "triaged"}, headers=operator)).status_code == 200
    escalated = await coordination.post(
        url, json={"status": "escalated", "note": "victim confirmed"}, headers=operator
    )
    assert escalated.status_code == 200
    assert escalated.json()["status_changed_by"] == "officer-li"
    detail = (await coordination.get(f"/v1/alerts/{alert.alert_id}", headers=f.officer("auditor"))).json()
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in detail["history"]] == [
        ("new", "triaged", "officer-li"),
        ("triaged", "escalated", "officer-li"),
    ]
    assert detail["history"][1]["note"] == "victim confirmed"
    assert detail["history"][0]["at"] <= detail["history"][1]["at"]


@pytest.mark.parametrize(
    ("path", "target"), [([], "dismissed"), (["triaged", "dismissed"], "triaged"), ([], "new")]
)
async def test_illegal_transition_is_409_with_current_state(coordination, sessions, path, target):
    alert = make_alert()
    await _store(sessions, alert)
    url = f"/v1/alerts/{alert.alert_id}/status"
    for step in path:
        assert (await coordination.post(url, json={"status": step}, headers=f.officer())).status_code == 200
    response = await coordination.post(url, json={"status": target}, headers=f.officer())
    assert response.status_code == 409
    assert response.json()["error"]["details"]["current_status"] == (path[-1] if path else "new")


async def test_roles_and_authentication(coordination, sessions):
    alert = make_alert()
    await _store(sessions, alert)
    url = f"/v1/alerts/{alert.alert_id}"
    assert (await coordination.get(url)).status_code == 401
    assert (await coordination.get(url, headers={"Authorization": "Bearer forged"})).status_code == 401
    auditor = f.officer("auditor")
    assert (await coordination.get(url, headers=auditor)).status_code == 200
    assert (
        await coordination.post(f"{url}/status", json={"status": "triaged"}, headers=auditor)
    ).status_code == 403
    assert (
        await coordination.post(f"{url}/status", json={"status": "bogus"}, headers=f.officer())
    ).status_code == 422
    missing = f"/v1/alerts/{uuid.uuid4()}"
    assert (await coordination.get(missing, headers=f.officer())).status_code == 404
    # An institution's API key is not an officer's token.
    _, bank_headers = await f.institution(sessions, "bank")
    assert (await coordination.get(url, headers=bank_headers)).status_code == 401


async def test_health(coordination):
    assert (await coordination.get("/health")).json()["checks"]["alerts_consumer"] == "ok"
