"""The victims' own payments in a case's money flow: counted once whoever reports them (the person, the
alerts, the officer opening the case, a bank listing a victim's own account), and drafted once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.coordination import public as coordination
from services.kit.db import unit_of_work
from tests import factories as f
from tests.coordination.conftest import bank, issue, respond

pytestmark = pytest.mark.integration
UNIT = "changji-psb"


def _report(warning_id: uuid.UUID, victim: tuple[str, str], payees: list[tuple[str, str, str]]) -> Any:
    """What the notifier tells of a warned person who says they are defrauded: their total per payee."""
    at = datetime.now(UTC) - timedelta(minutes=20)
    paid = [coordination.Payee(i, a, Decimal(v), at) for i, a, v in payees]
    return coordination.CitizenReport(
        warning_id=warning_id,
        alert_ids=[],
        phone=f.phone(),
        institution=victim[0],
        account=victim[1],
        payees=paid,
        amount_at_risk=sum((p.amount for p in paid), Decimal(0)),
        event_time=at,
        source="answer",
        word="answer",
    )


async def _defrauded(sessions: Any, report: Any) -> str:
    async with unit_of_work(sessions) as s:
        case_id = await coordination.citizen_defrauded(s, report=report, on_behalf_of="p", unit=UNIT)
    return str(case_id)


async def _received(c: httpx.AsyncClient, op: dict[str, str], case_id: str) -> dict[str, str]:
    flow = (await c.get(f"/v1/cases/{case_id}/flow", headers=op)).json()
    return {n["account"]: n["received"] for n in flow["nodes"]}


async def _drafts(c: httpx.AsyncClient, op: dict[str, str], case_id: str) -> list[tuple[str, str]]:
    proposals = (await c.get(f"/v1/cases/{case_id}/proposals", headers=op)).json()
    return sorted((p["account"], p["amount"]) for p in proposals if p["status"] == "open")


async def test_a_payment_the_victims_own_account_lists_is_counted_and_stopped_once(coord, sessions):
    c, op = coord.client, f.officer("operator", unit=UNIT)
    victim_bank, victim_key, _ = await bank(sessions)
    mule_bank, _, _ = await bank(sessions)
    victim = (victim_bank, f.account("V"))
    a, b = f.account("MULE"), f.account("MULE")
    warning = uuid.uuid4()
    case_id = await _defrauded(sessions, _report(warning, victim, [(mule_bank, a, "30000.00")]))
    # Where did the money go? The officer queries the person's own account: the payment to a (reported
    # already, and drafted) and one to b the case did not know of.
    query = await issue(c, op, case_id, kind="query", institution_id=victim[0], account=victim[1])
    listing = {
        "holder": {"name": "Victim"},
        "balance": "0.00",
        "transfers": [
            {"transfer_id": "t1", "to_institution": mule_bank, "to_account": a, "amount": "30000.00",
             "at": f.iso(f.minutes_ago(20))},
            {"transfer_id": "t2", "to_institution": mule_bank, "to_account": b, "amount": "20000.00",
             "at": f.iso(f.minutes_ago(15))},
        ],
    }  # fmt: skip
    answered = await respond(c, victim_key, query["id"], "executed", query_result=listing)
    assert answered.status_code == 200, answered.text
    received = await _received(c, op, case_id)
    assert (received[a], received[b], received[victim[1]]) == ("30000.00", "20000.00", "0.00")
    assert await _drafts(c, op, case_id) == sorted([(a, "30000.00"), (b, "20000.00")])

    # The notifier now reports the payment to b: the same money, not a second payment.
    report = _report(warning, victim, [(mule_bank, a, "30000.00"), (mule_bank, b, "20000.00")])
    await _defrauded(sessions, report)
    received = await _received(c, op, case_id)
    assert (received[a], received[b]) == ("30000.00", "20000.00")
    assert await _drafts(c, op, case_id) == sorted([(a, "30000.00"), (b, "20000.00")])
    accept = {"follow_with_query": False}
    accepted = await c.post(f"/v1/cases/{case_id}/proposals/accept", json=accept, headers=op)
    assert accepted.status_code == 200, accepted.text
    assert sorted((i["account"], i["amount"]) for i in accepted.json()) == sorted(
        [(a, "30000.00"), (b, "20000.00")]
    )


async def test_the_cases_loss_grows_with_the_persons_further_payments(coord, sessions):
    c, op = coord.client, f.officer("operator", unit=UNIT)
    mule_bank, mule_key, _ = await bank(sessions)
    victim, a = ("victim-bank", f.account("V")), f.account("MULE")
    warning = uuid.uuid4()
    case_id = await _defrauded(sessions, _report(warning, victim, [(mule_bank, a, "30000.00")]))
    await _defrauded(sessions, _report(warning, victim, [(mule_bank, a, "50000.00")]))
    assert await _drafts(c, op, case_id) == [(a, "50000.00")]
    accept = {"follow_with_query": False}
    [stop] = (await c.post(f"/v1/cases/{case_id}/proposals/accept", json=accept, headers=op)).json()
    assert (await respond(c, mule_key, stop["id"], "executed", held_amount="50000.00")).status_code == 200
    totals = (await c.get(f"/v1/cases/{case_id}/flow", headers=op)).json()["totals"]
    assert (totals["lost"], totals["stopped"], totals["outstanding"]) == ("50000.00", "50000.00", "0.00")
    trail = (await c.get("/v1/audit", params={"case_id": case_id}, headers=f.officer("auditor"))).json()
    grown = [e for e in trail["items"] if e["action"] == "case.loss_grown"]
    said = [(e["before"]["amount_lost"], e["after"]["amount_lost"]) for e in grown]
    assert said == [("30000.00", "50000.00")]
