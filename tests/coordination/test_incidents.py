"""Incidents: the alerts of one mule account (its victims' and its own) are one incident, with its
victims counted and its amounts summed; triaging the incident moves each of its alerts."""

from __future__ import annotations

import pytest

from services.coordination.alerts import service as alerts
from services.kit.db import unit_of_work
from streams.schemas.alerts import Subject, incident_id_for
from tests import factories as f

pytestmark = pytest.mark.integration


async def test_fourteen_victims_of_one_mule_are_one_incident(coord, sessions):
    mule, bank = f.account("MULE"), f.unique("bank")
    victims = [f.victim_alert(mule_bank=bank, mule=mule, amount="1000.00") for _ in range(14)]
    own = f.alert(
        typology="mule_fan_in",
        score=0.97,
        reasons=["the account received money from 14 different people in the last hour"],
        recommended_actions=["notify_police", "recommend_stop_payment"],
        subject=Subject(account=mule, institution=bank),
        triggering_event_ids=[f"b:{f.unique('out')}"],
        amount_at_risk="14000.00",
        incident_id=incident_id_for(bank, mule),
    )
    unrelated = f.victim_alert(mule_bank=bank, mule=f.account("OTHER"), amount="5.00")
    async with unit_of_work(sessions) as s:
        await alerts.store(s, alerts=[*victims, own, unrelated])
    c, op = coord.client, f.officer()
    page = (await c.get("/v1/incidents", params={"status": "open", "limit": 200}, headers=op)).json()
    mine = [i for i in page["items"] if i["account"] == mule]
    assert len(mine) == 1
    incident = mine[0]
    assert incident["kind"] == "mule" and incident["institution"] == bank
    assert (incident["alerts"], incident["victims"], incident["new"]) == (15, 14, 15)
    assert incident["amount_at_risk"] == "14000.00"  # the victims' payments, the mule's inflow not again
    assert incident["typologies"] == ["call_then_transfer", "mule_fan_in"]
    assert incident["top"]["typology"] == "mule_fan_in"  # the highest score speaks for the incident

    moved = await c.post(f"/v1/incidents/{incident['id']}/status", json={"status": "dismissed"}, headers=op)
    assert moved.status_code == 200, moved.text
    assert moved.json()["changed"] == 15 and moved.json()["incident"]["open"] == 0
    detail = (await c.get(f"/v1/alerts/{own.alert_id}", headers=op)).json()
    assert [h["to_status"] for h in detail["history"]] == ["triaged", "dismissed"]
    again = await c.post(f"/v1/incidents/{incident['id']}/status", json={"status": "triaged"}, headers=op)
    assert again.status_code == 404  # nothing of it is open any more
    still = (await c.get(f"/v1/alerts/{unrelated.alert_id}", headers=op)).json()
    assert still["status"] == "new"


async def test_an_incident_id_must_look_like_one(coord):
    bad = await coord.client.get("/v1/incidents/NOT-AN-ID", headers=f.officer())
    assert bad.status_code == 422


async def test_alerts_from_before_incident_ids_group_by_the_account_they_name(coord, sessions):
    """Alerts stored before the scorer named incidents group by the payee (or subject) account."""
    mule, bank = f.account("OLD"), f.unique("bank")
    old = [
        f.victim_alert(mule_bank=bank, mule=mule, amount="300.00").model_copy(update={"incident_id": None})
        for _ in range(2)
    ]
    async with unit_of_work(sessions) as s:
        await alerts.store(s, alerts=old)
    page = (await coord.client.get("/v1/incidents", params={"limit": 200}, headers=f.officer())).json()
    [incident] = [i for i in page["items"] if i["account"] == mule]
    assert (incident["victims"], incident["amount_at_risk"], incident["institution"]) == (2, "600.00", bank)


async def test_an_incident_larger_than_its_listed_members_counts_every_alert(coord, sessions):
    """A mule account with 60 victims lists its 50 highest-scoring alerts; its amount at risk and its first
    alert count all 60 (the lowest-scoring, oldest victim's too)."""
    mule, bank = f.account("MULE"), f.unique("bank")
    first = f.victim_alert(mule_bank=bank, mule=mule, amount="7.00", score=0.5)
    async with unit_of_work(sessions) as s:
        await alerts.store(s, alerts=[first])
    rest = [f.victim_alert(mule_bank=bank, mule=mule, amount="1000.00", score=0.9) for _ in range(59)]
    async with unit_of_work(sessions) as s:
        await alerts.store(s, alerts=rest)
    c, op = coord.client, f.officer()
    page = (await c.get("/v1/incidents", params={"status": "open", "limit": 200}, headers=op)).json()
    [incident] = [i for i in page["items"] if i["account"] == mule]
    assert (incident["alerts"], incident["victims"], len(incident["members"])) == (60, 60, 50)
    assert incident["amount_at_risk"] == "59007.00"
    detail = (await c.get(f"/v1/alerts/{first.alert_id}", headers=op)).json()
    assert incident["first_received_at"] == detail["received_at"]
