"""A "defrauded" answer when police opened the case from the alert first: a note on their case, the
victim's payment counted once in the money flow, and no second stop-payment on a stopped account."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.notifier.warnings import repository
from streams.schemas.alerts import AlertPayment
from tests import factories as f
from tests.kafka_tools import eventually
from tests.notifier.helpers import (
    alerts_joined,
    desk_closes,
    desk_task_for,
    messages_to,
    token_in,
    warnings_for,
)

pytestmark = pytest.mark.integration


async def _scam_reaches_the_victim(ingest: Any, notifier: Any, sessions: Any) -> tuple[str, str, str, Any]:
    """A long call from a stranger, then 30,000 CNY to a new payee: (victim, mule account, its bank, the
    warning SMS sent to the victim)."""
    _, telecom = await f.institution(sessions, "telecom")
    _, bank = await f.institution(sessions, "bank")
    mule_bank, _ = await f.institution(sessions, "bank")
    victim, mule = f.phone(), f.account("MULE")
    events_call = [f.call(victim, start=f.minutes_ago(40), minutes=35)]
    events_pay = [
        f.transfer(
            victim,
            payer_account=f.account(),
            payee_account=mule,
            amount="30000.00",
            at=f.minutes_ago(2),
            payee_bank=mule_bank,
        )
    ]
    assert (await ingest.post("/v1/events", json={"events": events_call}, headers=telecom)).status_code == 200
    assert (await ingest.post("/v1/events", json={"events": events_pay}, headers=bank)).status_code == 200
    sms = await eventually(lambda: messages_to(notifier.sms.receiver, victim), timeout_s=20)
    return victim, mule, mule_bank, sms


async def _police_first(ingest: Any, coordination: Any, notifier: Any, sessions: Any, *, stop: bool) -> Any:
    """A scam reaches the victim's phone; police open the case from the alert (and maybe stop); the
    person then answers "defrauded". Returns (case id, operator headers, mule bank, mule account)."""
    victim, mule, mule_bank, sms = await _scam_reaches_the_victim(ingest, notifier, sessions)
    operator = f.officer("operator", unit=notifier.settings.case_unit)

    async def stored_alert() -> Any:
        items = (await coordination.get("/v1/alerts", headers=operator)).json()["items"]
        return next((a for a in items if a["subject"].get("phone") == victim), None)

    alert = await eventually(stored_alert, timeout_s=10)
    body = {
        "case_number": f"POL-{mule}",
        "title": "opened by police from the alert",
        "source": "alert",
        "alert_ids": [alert["id"]],
        "amount_lost": "30000.00",
        "lost_at": alert["event_time"],
        "destinations": [
            {"institution_id": mule_bank, "account": mule, "amount": "30000.00", "at": alert["event_time"]}
        ],
    }
    opened = await coordination.post("/v1/cases", json=body, headers=operator)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    if stop:
        spec = {"kind": "stop_payment", "institution_id": mule_bank, "account": mule, "amount": "30000.00"}
        issued = await coordination.post(f"/v1/cases/{case_id}/instructions", json=spec, headers=operator)
        assert issued.status_code == 201, issued.text
    token = token_in(str(sms[0]["text"]))
    answered = await notifier.client.post(f"/v1/answers/{token}", json={"answer": "defrauded"})
    assert answered.status_code == 200, answered.text
    [warning] = await warnings_for(sessions, victim)
    assert str(warning.case_id) == case_id  # the police case, not a second one
    return case_id, operator, mule_bank, mule


async def _flow_and_proposals(coordination: Any, case_id: str, operator: Any) -> tuple[Any, Any]:
    flow = (await coordination.get(f"/v1/cases/{case_id}/flow", headers=operator)).json()
    proposals = (await coordination.get(f"/v1/cases/{case_id}/proposals", headers=operator)).json()
    return flow, proposals


async def test_defrauded_on_a_police_case_drafts_on_the_reported_payment(
    ingest, scorer, coordination, notifier, sessions
):
    case_id, operator, mule_bank, mule = await _police_first(
        ingest, coordination, notifier, sessions, stop=False
    )
    flow, proposals = await _flow_and_proposals(coordination, case_id, operator)
    [node] = flow["nodes"]
    assert node["received"] == "30000.00"  # once, not once per report and once per answer
    assert [(p["institution_id"], p["account"], p["amount"], p["status"]) for p in proposals] == [
        (mule_bank, mule, "30000.00", "open")
    ]
    case = (await coordination.get(f"/v1/cases/{case_id}", headers=operator)).json()
    assert any("being defrauded" in n["text"] for n in case["notes"])


async def test_defrauded_on_a_stopped_account_drafts_nothing_more(
    ingest, scorer, coordination, notifier, sessions
):
    case_id, operator, _, _ = await _police_first(ingest, coordination, notifier, sessions, stop=True)
    flow, proposals = await _flow_and_proposals(coordination, case_id, operator)
    assert [n["received"] for n in flow["nodes"]] == ["30000.00"]
    assert proposals == []  # the stop-payment is issued already


async def test_defrauded_after_the_desks_case_was_closed_is_noted_on_that_case(
    ingest, scorer, coordination, notifier, sessions
):
    """The desk said "defrauded" (a case WARN-…), police closed that case, then the person answers the
    SMS with "defrauded" too: their answer is noted on the same case, not refused as a taken number."""
    victim, _, _, sms = await _scam_reaches_the_victim(ingest, notifier, sessions)
    task = await eventually(lambda: desk_task_for(sessions, victim), timeout_s=10)

    await desk_closes(
        notifier.client, task.id, f.officer("operator"), outcome="reached_too_late", defrauded=True
    )
    [warning] = await warnings_for(sessions, victim)
    case_id = str(warning.case_id)
    operator = f.officer("operator", unit=notifier.settings.case_unit)
    case = (await coordination.get(f"/v1/cases/{case_id}", headers=operator)).json()
    assert case["title"] == "Phone desk heard from the person: being defrauded"  # not "answered"
    closing = {"status": "closed", "outcome": "confirmed_fraud"}
    assert (
        await coordination.patch(f"/v1/cases/{case_id}", json=closing, headers=operator)
    ).status_code == 200

    token = token_in(str(sms[0]["text"]))
    answered = await notifier.client.post(f"/a/{token}", data={"answer": "defrauded"})
    assert answered.status_code == 200, answered.text
    [warning] = await warnings_for(sessions, victim)
    assert warning.answer == "defrauded" and str(warning.case_id) == case_id
    case = (await coordination.get(f"/v1/cases/{case_id}", headers=operator)).json()
    assert case["status"] == "closed"
    said = f"The person answered a citizen warning: being defrauded (warning {warning.id})."
    assert said in [n["text"] for n in case["notes"]]
    after = await desk_task_for(sessions, victim)
    assert after is not None and (after.status, after.outcome) == ("closed", "reached_too_late")  # it knew


async def test_defrauded_after_the_desk_dissuaded_them_puts_the_call_back_at_the_top(
    ingest, scorer, coordination, notifier, sessions
):
    """The desk closed the call as dissuaded; the scam came back and the person answers "defrauded", told
    that the police will call at once: the desk's task is open again, at the top of the queue."""
    victim, _, _, sms = await _scam_reaches_the_victim(ingest, notifier, sessions)
    task = await eventually(lambda: desk_task_for(sessions, victim), timeout_s=10)
    desk = f.officer("operator")
    await desk_closes(notifier.client, task.id, desk, outcome="dissuaded")

    token = token_in(str(sms[0]["text"]))
    answered = await notifier.client.post(f"/a/{token}", data={"answer": "defrauded"})
    assert answered.status_code == 200, answered.text
    again = await desk_task_for(sessions, victim)
    assert again is not None and again.id == task.id
    assert (again.status, again.reason, again.priority, again.taken_by) == ("open", "high_risk", 1.0, None)
    [warning] = await warnings_for(sessions, victim)
    assert (warning.answer, warning.outcome) == ("defrauded", "reached_too_late")  # not "dissuaded"
    queue = (await notifier.client.get("/v1/desk/tasks", headers=desk)).json()["items"]
    assert str(task.id) in [t["id"] for t in queue]
    taken = await notifier.client.post(f"/v1/desk/tasks/{task.id}/take", headers=desk)
    assert taken.status_code == 200, taken.text


async def test_defrauded_drafts_a_stop_on_every_payee_for_what_the_warning_grew_to(
    coordination, notifier, sessions
):
    """The warning's first alert (30,000 CNY to one account) grows: its revision 2 adds 100,000 to a second
    account, and another episode within the rate limit sends 70,000 to a third. The desk sees the 200,000
    at risk; the person's "I am being defrauded" drafts a stop-payment on each of the three accounts."""
    phone = f.phone()
    first = await notifier.alert(phone, score=0.97, event_time=f.minutes_ago(10))  # on the desk's queue
    grown = _revision_paying(first, bank="bank-y", account="MULE0002", amount="100000.00", total="130000.00")
    await notifier.send(grown)
    await notifier.alert(phone, score=0.6, payee=("bank-z", "MULE0003"), amount_at_risk="70000.00")
    await eventually(lambda: _joined(sessions, phone, 2), timeout_s=10)  # behind the revision, same partition

    [warning] = await warnings_for(sessions, phone)
    assert (warning.amount_at_risk, warning.payee_account) == (Decimal("200000.00"), "MULE0003")
    desk = f.officer("operator")
    queue = (await notifier.client.get("/v1/desk/tasks", headers=desk)).json()["items"]
    assert [t["amount_at_risk"] for t in queue if t["phone"] == phone] == ["200000.00"]

    warning = await _answers_defrauded(notifier, sessions, phone)
    operator = f.officer("operator", unit=notifier.settings.case_unit)
    proposals = (await coordination.get(f"/v1/cases/{warning.case_id}/proposals", headers=operator)).json()
    assert sorted((p["institution_id"], p["account"], p["amount"]) for p in proposals) == [
        ("bank-x", "MULE0001", "30000.00"),
        ("bank-y", "MULE0002", "100000.00"),
        ("bank-z", "MULE0003", "70000.00"),
    ]


async def _answers_defrauded(notifier: Any, sessions: Any, phone: str) -> Any:
    """The person answers their warning's SMS: "I am being defrauded"; their warning after it."""
    sms = await eventually(lambda: messages_to(notifier.sms.receiver, phone), timeout_s=20)
    answered = await notifier.client.post(
        f"/v1/answers/{token_in(str(sms[0]['text']))}", json={"answer": "defrauded"}
    )
    assert answered.status_code == 200, answered.text
    [warning] = await warnings_for(sessions, phone)
    return warning


async def _joined(sessions: Any, phone: str, n: int) -> bool:
    return len(await alerts_joined(sessions, phone)) == n


def _revision_paying(first: Any, *, bank: str, account: str, amount: str, total: str) -> Any:
    """The next revision of `first` (its payments; or its amount at risk to its payee, as `make_alert` makes
    it): the episode's next payment, `amount` to (`bank`, `account`) 5 minutes on, `total` at risk in all."""
    earlier = first.payments or [
        AlertPayment(
            event_ref=first.triggering_event_ids[1],
            amount=first.amount_at_risk,
            occurred_at=first.event_time,
            payee_account=first.subject.payee_account,
            payee_institution=first.subject.payee_institution,
        )
        for _ in range(1 if first.amount_at_risk else 0)  # (an alert of no amount has no payment)
    ]
    then = AlertPayment(
        event_ref=f"bank-a:{f.unique('tr')}",
        amount=amount,
        occurred_at=first.event_time + timedelta(minutes=5),
        payee_account=account,
        payee_institution=bank,
    )
    return first.model_copy(
        update={
            "revision": first.revision + 1,
            "amount_at_risk": total,
            "payments": [*earlier, then],
            "triggering_event_ids": [*first.triggering_event_ids, then.event_ref],
            "event_time": then.occurred_at,
            "subject": first.subject.model_copy(update={"payee_account": account, "payee_institution": bank}),
        }
    )


async def _stops_and_notes(coordination: Any, case_id: Any, operator: Any) -> tuple[list[Any], list[str]]:
    proposals = (await coordination.get(f"/v1/cases/{case_id}/proposals", headers=operator)).json()
    case = (await coordination.get(f"/v1/cases/{case_id}", headers=operator)).json()
    stops = sorted((p["institution_id"], p["account"], p["amount"]) for p in proposals)
    return stops, [n["text"] for n in case["notes"]]


async def _defrauded_on_one_payee(
    coordination: Any, notifier: Any, sessions: Any
) -> tuple[str, Any, Any, Any]:
    """A person warned of 30,000 CNY to bank-x/MULE0001 (on the desk's queue) answers "I am being
    defrauded": (their phone, the alert, the case, an operator of its unit)."""
    phone = f.phone()
    first = await notifier.alert(phone, score=0.97, event_time=f.minutes_ago(10))
    warning = await _answers_defrauded(notifier, sessions, phone)
    operator = f.officer("operator", unit=notifier.settings.case_unit)
    stops, _ = await _stops_and_notes(coordination, warning.case_id, operator)
    assert stops == [("bank-x", "MULE0001", "30000.00")]
    return phone, first, warning.case_id, operator


async def test_a_payment_joining_after_defrauded_gets_its_stop_drafted(coordination, notifier, sessions):
    """The person answers "I am being defrauded" (a stop is drafted on the one payee), then the episode's
    next payment arrives, 100,000 CNY to a second account: a stop is drafted on it too, in the same
    case. The desk then hears the same from the person: its word is noted, and nothing is drafted twice."""
    phone, first, case_id, operator = await _defrauded_on_one_payee(coordination, notifier, sessions)

    await notifier.send(
        _revision_paying(first, bank="bank-y", account="MULE0002", amount="100000.00", total="130000.00")
    )
    await eventually(lambda: _at_risk(sessions, phone, Decimal("130000.00")), timeout_s=10)
    [warning] = await warnings_for(sessions, phone)
    assert warning.case_id == case_id
    both = [("bank-x", "MULE0001", "30000.00"), ("bank-y", "MULE0002", "100000.00")]
    stops, notes = await _stops_and_notes(coordination, case_id, operator)
    assert (stops, notes) == (both, [])  # the payment is no news from the person: no note

    task = await desk_task_for(sessions, phone)
    assert task is not None
    await desk_closes(
        notifier.client, task.id, f.officer("operator"), outcome="reached_too_late", defrauded=True
    )
    stops, notes = await _stops_and_notes(coordination, case_id, operator)
    assert stops == both
    assert notes == [f"The phone desk heard from the person: being defrauded (warning {warning.id})."]


async def _at_risk(sessions: Any, phone: str, amount: Decimal) -> bool:
    [warning] = await warnings_for(sessions, phone)
    return warning.amount_at_risk == amount


async def test_the_desks_defrauded_drafts_on_a_payee_the_case_lacks(coordination, notifier, sessions):
    """A warning with a case whose later payment has no stop yet (it joined before joining payments were
    drafted on): the desk's "defrauded" drafts it, though the warning has its case already."""
    phone, first, case_id, operator = await _defrauded_on_one_payee(coordination, notifier, sessions)
    [warning] = await warnings_for(sessions, phone)
    async with sessions() as s, s.begin():
        later = {
            "event_ref": f"bank-a:{f.unique('tr')}",
            "amount": Decimal("100000.00"),
            "occurred_at": first.event_time + timedelta(minutes=5),
            "payee_account": "MULE0002",
            "payee_institution": "bank-y",
        }
        await repository.add_payments(s, warning_id=warning.id, payments=[later])
        await repository.grow(s, warning.id)
    task = await desk_task_for(sessions, phone)
    assert task is not None
    await desk_closes(
        notifier.client, task.id, f.officer("operator"), outcome="reached_too_late", defrauded=True
    )
    stops, _ = await _stops_and_notes(coordination, case_id, operator)
    assert stops == [("bank-x", "MULE0001", "30000.00"), ("bank-y", "MULE0002", "100000.00")]


async def _timeline(coordination: Any, case_id: Any, operator: Any) -> list[Any]:
    return (await coordination.get(f"/v1/cases/{case_id}/timeline", headers=operator)).json()["items"]


async def test_a_further_payment_to_a_drafted_payee_grows_its_draft(coordination, notifier, sessions):
    """The person said "I am being defrauded" (a stop drafted on 30,000 CNY to bank-x/MULE0001), then the
    episode pays the same account 20,000 more: the one draft now asks to stop 50,000, what the account
    received from the person, and the case's history says so. Redelivered, the revision changes nothing."""
    phone, first, case_id, operator = await _defrauded_on_one_payee(coordination, notifier, sessions)
    again = _revision_paying(first, bank="bank-x", account="MULE0001", amount="20000.00", total="50000.00")
    await notifier.send(again)
    await eventually(lambda: _at_risk(sessions, phone, Decimal("50000.00")), timeout_s=10)

    stops, notes = await _stops_and_notes(coordination, case_id, operator)
    assert (stops, notes) == ([("bank-x", "MULE0001", "50000.00")], [])
    flow = (await coordination.get(f"/v1/cases/{case_id}/flow", headers=operator)).json()
    assert [(n["account"], n["received"]) for n in flow["nodes"]] == [("MULE0001", "50000.00")]
    history = await _timeline(coordination, case_id, operator)
    grown = [e for e in history if e["action"] == "money.stop_draft_grown"]
    assert [(e["before"]["amount"], e["after"]["amount"]) for e in grown] == [("30000.00", "50000.00")]

    # Redelivered, then a marker behind it on the same partition: a third payment, to a second account.
    await notifier.send(again)
    await notifier.send(
        _revision_paying(again, bank="bank-y", account="MULE0002", amount="10000.00", total="60000.00")
    )
    await eventually(lambda: _at_risk(sessions, phone, Decimal("60000.00")), timeout_s=10)
    stops, _ = await _stops_and_notes(coordination, case_id, operator)
    assert stops == [("bank-x", "MULE0001", "50000.00"), ("bank-y", "MULE0002", "10000.00")]
    flow = (await coordination.get(f"/v1/cases/{case_id}/flow", headers=operator)).json()
    assert sorted((n["account"], n["received"]) for n in flow["nodes"]) == [
        ("MULE0001", "50000.00"),
        ("MULE0002", "10000.00"),
    ]


async def test_a_further_payment_to_a_stopped_payee_is_noted_not_sent(coordination, notifier, sessions):
    """The person's draft (30,000 CNY) was issued: the bank has the stop-payment. The episode then pays the
    same account 20,000 more: the instruction sent stays as it was, the account shows the 50,000 received,
    and a note on the case tells the officer of the 20,000 its stop does not cover."""
    bank, _ = await f.institution(sessions, "bank")
    phone = f.phone()
    first = await notifier.alert(phone, score=0.97, payee=(bank, "MULE0001"), event_time=f.minutes_ago(10))
    warning = await _answers_defrauded(notifier, sessions, phone)
    case_id, operator = warning.case_id, f.officer("operator", unit=notifier.settings.case_unit)
    accepted = await coordination.post(
        f"/v1/cases/{case_id}/proposals/accept", json={"follow_with_query": False}, headers=operator
    )
    assert accepted.status_code == 200, accepted.text
    [stop] = accepted.json()
    assert (stop["kind"], stop["amount"]) == ("stop_payment", "30000.00")

    await notifier.send(
        _revision_paying(first, bank=bank, account="MULE0001", amount="20000.00", total="50000.00")
    )
    await eventually(lambda: _at_risk(sessions, phone, Decimal("50000.00")), timeout_s=10)
    instructions = (await coordination.get(f"/v1/cases/{case_id}/instructions", headers=operator)).json()
    assert [(i["id"], i["amount"]) for i in instructions] == [(stop["id"], "30000.00")]
    proposals = (await coordination.get(f"/v1/cases/{case_id}/proposals", headers=operator)).json()
    assert [(p["amount"], p["status"]) for p in proposals] == [("30000.00", "accepted")]
    flow = (await coordination.get(f"/v1/cases/{case_id}/flow", headers=operator)).json()
    assert [(n["account"], n["received"]) for n in flow["nodes"]] == [("MULE0001", "50000.00")]
    _, notes = await _stops_and_notes(coordination, case_id, operator)
    assert len(notes) == 1 and "20000.00" in notes[0] and "50000.00" in notes[0], notes


async def test_the_desks_defrauded_without_a_case_drafts_on_later_payments(coordination, notifier, sessions):
    """A warning of no amount yet (its alert named no payment) on the desk's queue: the desk hears from the
    person that they are being defrauded, and there is nothing to open a case on. The episode's payment
    then arrives, 30,000 CNY to bank-x/MULE0001: as after the person's own answer, a case is opened and the
    stop drafted; titled and noted as the desk's word, which it rests on (the person never answered)."""
    phone = f.phone()
    first = await notifier.alert(phone, score=0.97, amount_at_risk=None, event_time=f.minutes_ago(10))
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=10)
    await desk_closes(
        notifier.client, task.id, f.officer("operator"), outcome="reached_too_late", defrauded=True
    )
    [warning] = await warnings_for(sessions, phone)
    assert (warning.amount_at_risk, warning.case_id) == (None, None)

    await notifier.send(
        _revision_paying(first, bank="bank-x", account="MULE0001", amount="30000.00", total="30000.00")
    )
    await eventually(lambda: _at_risk(sessions, phone, Decimal("30000.00")), timeout_s=10)
    [warning] = await warnings_for(sessions, phone)
    assert warning.case_id is not None
    operator = f.officer("operator", unit=notifier.settings.case_unit)
    stops, notes = await _stops_and_notes(coordination, warning.case_id, operator)
    assert stops == [("bank-x", "MULE0001", "30000.00")]
    case = (await coordination.get(f"/v1/cases/{warning.case_id}", headers=operator)).json()
    assert case["title"] == "Phone desk heard from the person: being defrauded"
    assert notes == [
        f"The phone desk heard from the person: being defrauded (warning {warning.id}). Nothing was at risk"
        " then: the payment that followed opened this case."
    ]
