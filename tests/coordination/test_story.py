"""The whole story on the real Kafka and PostgreSQL: alert → case → stop-payment → bank executes →
query → next-hop stop-payment → freeze with approval → release → return, amounts reconciling each step."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from services.coordination.alerts import service as alerts_service
from services.kit.db import unit_of_work
from streams import topics
from streams.schemas.alerts import Subject
from tests import factories as f
from tests.coordination.conftest import bank, case_body, issue, open_case, respond
from tests.kafka_tools import eventually, read_topic

pytestmark = pytest.mark.integration


async def _alert(sessions: Any, *, payee: str, payee_bank: str, amount: str) -> str:
    alert = f.alert(
        score=0.93,
        reasons=["long call from a number never seen", "large transfer to a new payee"],
        recommended_actions=["recommend_stop_payment"],
        subject=Subject(phone=f.phone(), payee_account=payee, payee_institution=payee_bank),
        triggering_event_ids=["t:1"],
        amount_at_risk=amount,
        event_time=f.minutes_ago(20),
        created_at=f.minutes_ago(20),
        scorer_version="test",
    )
    async with unit_of_work(sessions) as session:
        await alerts_service.store(session, alerts=[alert])
    return str(alert.alert_id)


def _node(flow: dict[str, Any], account: str) -> dict[str, Decimal]:
    node = next(n for n in flow["nodes"] if n["account"] == account)
    return {k: Decimal(node[k]) for k in ("received", "stopped", "frozen", "returned", "gone")}


def _totals(flow: dict[str, Any]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in flow["totals"].items()}


async def test_whole_story_reconciles(infra, coord, sessions):
    c = coord.client
    op, sup = f.officer("operator", unit="story-unit"), f.officer("supervisor", unit="story-unit")
    bank_a, bank_a_key, _ = await bank(sessions)
    bank_b, bank_b_key, _ = await bank(sessions, kind="payment")
    mule, next_hop = f.account("MULE"), f.account("HOP")

    # Alert → case, with the money's first destination from the alert.
    alert_id = await _alert(sessions, payee=mule, payee_bank=bank_a, amount="50000.00")
    body = case_body((bank_a, mule, "50000.00"), source="alert", alert_ids=[alert_id])
    created = await c.post("/v1/cases", json=body, headers=op)
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]

    async def flow() -> dict[str, Any]:
        r = await c.get(f"/v1/cases/{case_id}/flow", headers=op)
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert _node(await flow(), mule)["received"] == Decimal("50000.00")

    # Stop-payment on the mule account; it reaches bank A's topic with the instruction id as key.
    stop = await issue(
        c, op, case_id, kind="stop_payment", institution_id=bank_a, account=mule, amount="50000.00"
    )
    assert stop["status"] == "issued"

    async def status(iid: str) -> str:
        return str((await c.get(f"/v1/instructions/{iid}", headers=op)).json()["status"])

    await eventually(lambda: _is(status(stop["id"]), "delivered"), timeout_s=10)
    topic = topics.name(topics.instructions_for(bank_a), infra.prefix)
    records = await read_topic(
        infra.kafka, topic, until=lambda rs: any(r.key == stop["id"].encode() for r in rs)
    )
    message = orjson.loads(next(r for r in records if r.key == stop["id"].encode()).value)
    assert message["kind"] == "stop_payment" and message["amount"] == "50000.00"
    assert message["legal_basis"]["case_number"] == body["case_number"]

    # The bank acknowledges, then could hold only 30,000: the rest had moved on.
    assert (await respond(c, bank_a_key, stop["id"], "acknowledged")).status_code == 200
    r = await respond(
        c,
        bank_a_key,
        stop["id"],
        "partially_executed",
        held_amount="30000.00",
        reason="20000 transferred out",
    )
    assert r.status_code == 200, r.text
    assert _totals(await flow())["stopped"] == Decimal("30000.00")

    # Query: the answer lists the downstream transfers; the large one is proposed as a next hop.
    query = await issue(c, op, case_id, kind="query", institution_id=bank_a, account=mule)
    result = {
        "holder": {"name": "Zhang San", "id_number_last4": "123X"},
        "balance": "30000.00",
        "transfers": [
            {
                "transfer_id": "tx-1",
                "to_institution": bank_b,
                "to_account": next_hop,
                "amount": "19500.00",
                "at": f.iso(f.minutes_ago(10)),
            },
            {
                "transfer_id": "tx-2",
                "to_institution": bank_b,
                "to_account": f.account("SMALL"),
                "amount": "500.00",
                "at": f.iso(f.minutes_ago(9)),
            },
        ],
    }
    r = await respond(c, bank_a_key, query["id"], "executed", query_result=result)
    assert r.status_code == 200, r.text
    proposals = (await c.get(f"/v1/cases/{case_id}/proposals?status=open", headers=op)).json()
    assert [(p["account"], p["amount"]) for p in proposals] == [(next_hop, "19500.00")]
    mule_node = _node(await flow(), mule)
    assert mule_node["received"] == Decimal("50000.00") and mule_node["gone"] == Decimal("20000.00")

    # Accept in one action: a stop-payment and a query on the next hop.
    accepted = await c.post(f"/v1/cases/{case_id}/proposals/accept", json={}, headers=op)
    assert accepted.status_code == 200, accepted.text
    hop_stop = next(i for i in accepted.json() if i["kind"] == "stop_payment")
    assert hop_stop["account"] == next_hop and hop_stop["amount"] == "19500.00"
    r = await respond(c, bank_b_key, hop_stop["id"], "executed", held_amount="19500.00")
    assert r.status_code == 200, r.text
    totals = _totals(await flow())
    assert totals["stopped"] == Decimal("49500.00")
    assert totals["outstanding"] == Decimal("500.00")

    # Freeze on the mule account: the operator asks, another officer (a supervisor) approves.
    freeze = await issue(
        c,
        op,
        case_id,
        kind="freeze",
        institution_id=bank_a,
        account=mule,
        amount="30000.00",
        document_number="CJ-FRZ-2026-001",
    )
    assert freeze["status"] == "awaiting_approval"
    approved = await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=sup)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "issued" and approved.json()["expires_at"]
    r = await respond(c, bank_a_key, freeze["id"], "executed", held_amount="30000.00")
    assert r.status_code == 200, r.text
    assert await status(stop["id"]) == "converted"
    totals = _totals(await flow())
    assert (totals["stopped"], totals["frozen"]) == (Decimal("19500.00"), Decimal("30000.00"))
    assert totals["recovered"] == Decimal("49500.00")

    # Release (approved), then return the funds to the victim.
    release = await issue(
        c, op, case_id, kind="release", parent_id=freeze["id"], document_number="CJ-REL-001"
    )
    assert release["amount"] == "30000.00"
    assert (await c.post(f"/v1/instructions/{release['id']}/approve", headers=sup)).status_code == 200
    assert (await respond(c, bank_a_key, release["id"], "executed")).status_code == 200
    assert await status(freeze["id"]) == "released"
    assert _totals(await flow())["frozen"] == Decimal("0.00")

    back = await issue(c, op, case_id, kind="return_funds", parent_id=freeze["id"])
    assert back["amount"] == "30000.00" and back["beneficiary_account"] == body["victim"]["account"]
    assert (await respond(c, bank_a_key, back["id"], "executed")).status_code == 200
    totals = _totals(await flow())
    assert totals["returned"] == Decimal("30000.00")
    assert (
        totals["recovered"]
        == totals["stopped"] + totals["frozen"] + totals["returned"]
        == Decimal("49500.00")
    )
    assert totals["lost"] - totals["recovered"] == totals["outstanding"] == Decimal("500.00")

    detail = (await c.get(f"/v1/cases/{case_id}", headers=op)).json()
    assert detail["alert_ids"] == [alert_id]
    assert len(detail["instructions"]) == 7


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)


async def test_a_next_account_paid_twice_is_stopped_for_both_and_queried_once(coord, sessions):
    """The mule split what it passed on to the next account in two transfers: two proposals, one stop-
    payment for their sum (not the first's amount, the second then taken as stopped) and one query."""
    c, op = coord.client, f.officer()
    bank_a, key_a, _ = await bank(sessions)
    bank_b, _, _ = await bank(sessions)
    mule, hop = f.account("MULE"), f.account("HOP")
    case_id = await open_case(c, op, (bank_a, mule, "50000.00"))
    query = await issue(c, op, case_id, kind="query", institution_id=bank_a, account=mule)
    first, second = f.minutes_ago(10), f.minutes_ago(9)
    transfers = [
        {
            "transfer_id": f.unique("tx"),
            "to_institution": bank_b,
            "to_account": hop,
            "amount": amount,
            "at": at,
        }
        for amount, at in (("20000.00", f.iso(first)), ("25000.00", f.iso(second)))
    ]
    result = {"holder": {"name": "Zhang San"}, "balance": "100.00", "transfers": transfers}
    answered = await respond(c, key_a, query["id"], "executed", query_result=result)
    assert answered.status_code == 200, answered.text
    proposals = (await c.get(f"/v1/cases/{case_id}/proposals", headers=op)).json()
    assert sorted(p["amount"] for p in proposals) == ["20000.00", "25000.00"]

    accepted = await c.post(f"/v1/cases/{case_id}/proposals/accept", json={}, headers=op)
    assert accepted.status_code == 200, accepted.text
    issued = [(i["kind"], i["institution_id"], i["account"], i["amount"]) for i in accepted.json()]
    assert issued == [("stop_payment", bank_b, hop, "45000.00"), ("query", bank_b, hop, None)]
    [hop_query] = [i for i in accepted.json() if i["kind"] == "query"]
    since = datetime.fromisoformat(hop_query["since"])
    assert abs((since - first).total_seconds()) < 1  # from the first transfer on
