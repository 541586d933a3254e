"""The whole loop on the real components: events → alert → warning → "I am being defrauded" → case
with a drafted stop-payment, which an operator then issues."""

from __future__ import annotations

import pytest

from tests import factories as f
from tests.kafka_tools import eventually
from tests.notifier.helpers import desk_task_for, messages_to, token_in, warnings_for

pytestmark = pytest.mark.integration


async def test_defrauded_answer_opens_a_case_with_a_drafted_stop_payment(
    ingest, scorer, coordination, notifier, sessions
):
    _, telecom = await f.institution(sessions, "telecom")
    _, bank = await f.institution(sessions, "bank")
    mule_bank, _ = await f.institution(sessions, "bank")
    victim, mule = f.phone(), f.account("MULE")
    scam_call = f.call(victim, start=f.minutes_ago(40), minutes=35)
    transfer = f.transfer(
        victim,
        payer_account=f.account(),
        payee_account=mule,
        amount="30000.00",
        at=f.minutes_ago(2),
        payee_bank=mule_bank,
    )
    assert (await ingest.post("/v1/events", json={"events": [scam_call]}, headers=telecom)).status_code == 200
    assert (await ingest.post("/v1/events", json={"events": [transfer]}, headers=bank)).status_code == 200

    sms = await eventually(lambda: messages_to(notifier.sms.receiver, victim), timeout_s=20)
    token = token_in(str(sms[0]["text"]))
    answered = await notifier.client.post(f"/v1/answers/{token}", json={"answer": "defrauded"})
    assert answered.status_code == 200, answered.text

    [warning] = await warnings_for(sessions, victim)
    assert warning.answer == "defrauded" and warning.outcome == "reached_too_late"
    assert warning.case_id is not None
    task = await desk_task_for(sessions, victim)
    assert task is not None  # the desk calls the person as well

    operator = f.officer("operator", unit=notifier.settings.case_unit)
    case = (await coordination.get(f"/v1/cases/{warning.case_id}", headers=operator)).json()
    assert case["victim_phone"] == victim
    proposals = (await coordination.get(f"/v1/cases/{warning.case_id}/proposals", headers=operator)).json()
    assert [(p["institution_id"], p["account"], p["amount"], p["status"]) for p in proposals] == [
        (mule_bank, mule, "30000.00", "open")
    ]
    # The operator issues the drafted stop-payment.
    issued = await coordination.post(
        f"/v1/cases/{warning.case_id}/proposals/accept",
        json={"proposal_ids": [proposals[0]["id"]], "follow_with_query": False},
        headers=operator,
    )
    assert issued.status_code == 200, issued.text
    [instruction] = issued.json()
    assert instruction["kind"] == "stop_payment" and instruction["status"] == "issued"
    assert instruction["account"] == mule
