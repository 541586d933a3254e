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
from services.coordination.alerts import service as alerts_service
from services.kit.db import unit_of_work
from streams.schemas.alerts import Subject
from tests import factories as f
from tests.coordination.conftest import bank, case_body, issue, respond

pytestmark = pytest.mark.integration
UNIT = "changji-psb"


def _report(
    warning_id: uuid.UUID,
    victim: tuple[str, str],
    payees: list[tuple[str, str, str]],
    *,
    alert_ids: list[uuid.UUID] | None = None,
    phone: str | None = None,
) -> Any:
    """What the notifier tells of a warned person who says they are defrauded: their total per payee."""
    at = datetime.now(UTC) - timedelta(minutes=20)
    paid = [coordination.Payee(i, a, Decimal(v), at) for i, a, v in payees]
    return coordination.CitizenReport(
        warning_id=warning_id,
        alert_ids=alert_ids or [],
        phone=phone or f.phone(),
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


async def _victims_alert(
    c: httpx.AsyncClient,
    op: dict[str, str],
    sessions: Any,
    case_id: str,
    phone: str,
    victim: tuple[str, str],
    payee: tuple[str, str],
) -> uuid.UUID:
    """An alert about a victim's payment (paid from `victim`, by the person of `phone`), linked to the case:
    the account is a victim's own."""
    alert_id = await _stored_alert(sessions, phone, victim, payee)
    linked = await c.post(f"/v1/cases/{case_id}/alerts", json={"alert_id": str(alert_id)}, headers=op)
    assert linked.status_code == 204, linked.text
    return alert_id


async def _stored_alert(
    sessions: Any, phone: str, victim: tuple[str, str], payee: tuple[str, str]
) -> uuid.UUID:
    """An alert about a payment from `victim` (by the person of `phone`) to `payee`, in no case yet."""
    subject = Subject(
        phone=phone,
        institution=victim[0],
        account=victim[1],
        payee_institution=payee[0],
        payee_account=payee[1],
    )
    alert = f.alert(subject=subject, amount_at_risk="1000.00")
    async with unit_of_work(sessions) as s:
        await alerts_service.store(s, alerts=[alert])
    return alert.alert_id


def _listing(victim_bank: str, *transfers: tuple[str, str, str, str]) -> dict[str, Any]:
    """A bank's answer to a query of a victim's account: (transfer id, payee bank, payee, amount)."""
    listed = [
        {"transfer_id": t, "to_institution": i, "to_account": a, "amount": v, "at": f.iso(f.minutes_ago(15))}
        for t, i, a, v in transfers
    ]
    return {"holder": {"name": "Victim"}, "balance": "0.00", "transfers": listed}


async def _opened(
    c: httpx.AsyncClient, op: dict[str, str], victim: dict[str, str], body: dict[str, Any]
) -> str:
    """A case police open with the victim as given (phone, account, or both)."""
    opened = await c.post("/v1/cases", json={**body, "victim": victim}, headers=op)
    assert opened.status_code == 201, opened.text
    return str(opened.json()["id"])


async def _bank_lists(
    c: httpx.AsyncClient,
    op: dict[str, str],
    case_id: str,
    key: dict[str, str],
    victim: tuple[str, str],
    *transfers: tuple[str, str, str, str],
) -> None:
    """The officer queries a victim's own account, and its bank lists the transfers (`_listing`)."""
    query = await issue(c, op, case_id, kind="query", institution_id=victim[0], account=victim[1])
    listing = _listing(victim[0], *transfers)
    assert (await respond(c, key, query["id"], "executed", query_result=listing)).status_code == 200


async def _lost(c: httpx.AsyncClient, op: dict[str, str], case_id: str) -> str:
    return str((await c.get(f"/v1/cases/{case_id}/flow", headers=op)).json()["totals"]["lost"])


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


async def test_each_victims_payments_into_an_account_count_beside_the_other_victims(coord, sessions):
    c, op = coord.client, f.officer("operator", unit=UNIT)
    b_bank, b_key, _ = await bank(sessions)
    mule_bank, _, _ = await bank(sessions)
    mule = (mule_bank, f.account("MULE"))
    a, b, d = ("a-bank", f.account("VA")), (b_bank, f.account("VB")), ("d-bank", f.account("VD"))
    # Victim A reports 30,000 paid to the mule: the case.
    case_id = await _defrauded(sessions, _report(uuid.uuid4(), a, [(*mule, "30000.00")]))
    # Victim B paid the same mule 20,000: B's alert joins the case, and B's bank lists the payment.
    await _victims_alert(c, op, sessions, case_id, f.phone(), b, mule)
    await _bank_lists(c, op, case_id, b_key, b, ("t1", *mule, "20000.00"))
    assert (await _received(c, op, case_id))[mule[1]] == "50000.00"
    assert await _lost(c, op, case_id) == "50000.00"
    assert await _drafts(c, op, case_id) == sorted([(mule[1], "30000.00"), (mule[1], "20000.00")])

    # B's warning reports it too: the same money. Victim D, whose alert joined the case, reports 5,000.
    b_alert = await _victims_alert(c, op, sessions, case_id, f.phone(), b, mule)
    await _defrauded(sessions, _report(uuid.uuid4(), b, [(*mule, "20000.00")], alert_ids=[b_alert]))
    d_alert = await _victims_alert(c, op, sessions, case_id, f.phone(), d, mule)
    assert await _defrauded(
        sessions, _report(uuid.uuid4(), d, [(*mule, "5000.00")], alert_ids=[d_alert])
    ) == (case_id)
    assert (await _received(c, op, case_id))[mule[1]] == "55000.00"
    assert await _lost(c, op, case_id) == "55000.00"
    # The mule's open draft grows to what the listing's does not ask for.
    assert await _drafts(c, op, case_id) == sorted([(mule[1], "35000.00"), (mule[1], "20000.00")])
    trail = (await c.get("/v1/audit", params={"case_id": case_id}, headers=f.officer("auditor"))).json()
    grown = [e for e in trail["items"] if e["action"] == "case.loss_grown"]
    said = [(e["before"]["amount_lost"], e["after"]["amount_lost"]) for e in grown]
    assert said == [("30000.00", "50000.00"), ("50000.00", "55000.00")]


async def test_a_victims_payment_counts_once_whichever_of_their_accounts_the_bank_lists(coord, sessions):
    c, op = coord.client, f.officer("operator", unit=UNIT)
    b_bank, b_key, _ = await bank(sessions)
    mule_bank, _, _ = await bank(sessions)
    mule = (mule_bank, f.account("MULE"))
    a, b1, b2 = ("a-bank", f.account("VA")), (b_bank, f.account("VB")), (b_bank, f.account("VB"))
    case_id = await _defrauded(sessions, _report(uuid.uuid4(), a, [(*mule, "30000.00")]))
    # Victim B, of one phone, paid from two accounts; their warning names the first, and reports 20,000.
    phone = f.phone()
    b_alert = await _victims_alert(c, op, sessions, case_id, phone, b1, mule)
    await _victims_alert(c, op, sessions, case_id, phone, b2, mule)
    await _defrauded(sessions, _report(uuid.uuid4(), b1, [(*mule, "20000.00")], alert_ids=[b_alert]))
    assert (await _received(c, op, case_id))[mule[1]] == "50000.00"
    # B's bank lists the payment from the second account: B's, reported already.
    await _bank_lists(c, op, case_id, b_key, b2, ("t1", *mule, "20000.00"))
    assert (await _received(c, op, case_id))[mule[1]] == "50000.00"
    assert await _lost(c, op, case_id) == "50000.00"
    assert await _drafts(c, op, case_id) == [(mule[1], "50000.00")]


async def test_a_warnings_account_the_case_does_not_tie_to_a_person_does_not_add_its_report(coord, sessions):
    c, op = coord.client, f.officer("operator", unit=UNIT)
    y_bank, y_key, _ = await bank(sessions)
    mule_bank, _, _ = await bank(sessions)
    mule = (mule_bank, f.account("MULE"))
    phone, x, y = f.phone(), ("x-bank", f.account("VX")), (y_bank, f.account("VY"))
    # One person paid the mule 30,000 from X (the alert that raised their warning) and 20,000 from Y. Police
    # open the case from Y's alert alone, and Y's bank lists the 20,000.
    x_alert = await _stored_alert(sessions, phone, x, mule)
    y_alert = await _stored_alert(sessions, phone, y, mule)
    case_id = await _opened(
        c, op, {"phone": phone}, case_body(amount_lost="20000.00", source="alert", alert_ids=[str(y_alert)])
    )
    await _bank_lists(c, op, case_id, y_key, y, ("t1", *mule, "20000.00"))
    # The person's warning names X, which the case does not know as anyone's: its 50,000 may hold the
    # listed 20,000, so the larger counts, not the sum.
    report = _report(uuid.uuid4(), x, [(*mule, "50000.00")], alert_ids=[x_alert, y_alert], phone=phone)
    assert await _defrauded(sessions, report) == case_id
    assert (await _received(c, op, case_id))[mule[1]] == "50000.00"
    assert await _lost(c, op, case_id) == "50000.00"
    assert sum((Decimal(v) for _, v in await _drafts(c, op, case_id)), Decimal(0)) == Decimal("50000.00")


async def test_a_case_victims_account_without_a_phone_does_not_add_the_persons_report(coord, sessions):
    c, op = coord.client, f.officer("operator", unit=UNIT)
    mule_bank, _, _ = await bank(sessions)
    mule = (mule_bank, f.account("MULE"))
    phone, x, y = f.phone(), ("x-bank", f.account("VX")), ("y-bank", f.account("VY"))
    # Police open the case with the victim's account X (where returned funds go) and no phone: 30,000 paid
    # to the mule (from Y).
    case_id = await _opened(
        c,
        op,
        {"institution_id": x[0], "account": x[1]},
        case_body((*mule, "30000.00"), amount_lost="30000.00"),
    )
    # The person's warning (phone P, account Y, its alert linked) reports the same 30,000: nothing ties X
    # to P, so the case's report may be theirs and the larger counts.
    alert = await _victims_alert(c, op, sessions, case_id, phone, y, mule)
    report = _report(uuid.uuid4(), y, [(*mule, "30000.00")], alert_ids=[alert], phone=phone)
    assert await _defrauded(sessions, report) == case_id
    assert (await _received(c, op, case_id))[mule[1]] == "30000.00"
    assert await _lost(c, op, case_id) == "30000.00"
    assert sum((Decimal(v) for _, v in await _drafts(c, op, case_id)), Decimal(0)) <= Decimal("30000.00")


async def test_a_listing_from_a_case_victims_account_without_a_phone_counts(coord, sessions):
    c, op = coord.client, f.officer("operator", unit=UNIT)
    x_bank, x_key, _ = await bank(sessions)
    mule_bank, _, _ = await bank(sessions)
    mule, x = (mule_bank, f.account("MULE")), (x_bank, f.account("VX"))
    case_id = await _opened(
        c, op, {"institution_id": x[0], "account": x[1]}, case_body(amount_lost="20000.00")
    )
    # No phone ties X to a person, yet its bank's listing is a payment of its own: it counts, and is drafted.
    await _bank_lists(c, op, case_id, x_key, x, ("t1", *mule, "20000.00"))
    assert (await _received(c, op, case_id))[mule[1]] == "20000.00"
    assert await _drafts(c, op, case_id) == [(mule[1], "20000.00")]
