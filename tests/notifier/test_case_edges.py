"""A person's "I am being defrauded" at the edges of what a case holds: more payees than a case's report
lists, and nothing at risk yet. Neither loses the person's word nor fails the answer, the desk's close or
the alerts consumer."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from streams.schemas.alerts import AlertPayment
from tests import factories as f
from tests.kafka_tools import eventually
from tests.notifier.helpers import desk_closes, desk_task_for, messages_to, token_in, warnings_for

pytestmark = pytest.mark.integration
PAYEES = 120  # past the 100 destinations a case's report lists


def _paid_to_many(n: int, at: datetime) -> list[AlertPayment]:
    """`n` payments of 100 CNY, each to an account of its own, a second apart up to `at`."""
    return [
        AlertPayment(
            event_ref=f"bank-a:{f.unique('tr')}",
            amount="100.00",
            occurred_at=at - timedelta(seconds=n - i),
            payee_account=f"MULE{i:04d}",
            payee_institution="bank-x",
        )
        for i in range(n)
    ]


async def _answers(notifier: Any, phone: str, answer: str) -> Any:
    sms = await eventually(lambda: messages_to(notifier.sms.receiver, phone), timeout_s=20)
    return await notifier.client.post(f"/v1/answers/{token_in(str(sms[0]['text']))}", json={"answer": answer})


async def _stops(coordination: Any, case_id: Any, operator: Any) -> list[tuple[str, str, str]]:
    proposals = (await coordination.get(f"/v1/cases/{case_id}/proposals", headers=operator)).json()
    return sorted((p["account"], p["amount"], p["status"]) for p in proposals)


def _each_drafted(n: int) -> list[tuple[str, str, str]]:
    return [(f"MULE{i:04d}", "100.00", "open") for i in range(n)]


async def test_defrauded_with_more_payees_than_a_report_lists_opens_the_case(
    coordination, notifier, sessions
):
    """The warning's alert paid 120 accounts: the person's "I am being defrauded" is taken (not a 500 that
    loses it), the case opened, and each of the 120 accounts has its stop drafted and its money counted."""
    phone, at = f.phone(), f.minutes_ago(10)
    payments = _paid_to_many(PAYEES, at)
    await notifier.alert(phone, score=0.97, payments=payments, amount_at_risk="12000.00", event_time=at)

    answered = await _answers(notifier, phone, "defrauded")
    assert answered.status_code == 200, answered.text
    [warning] = await warnings_for(sessions, phone)
    assert (warning.answer, warning.outcome) == ("defrauded", "reached_too_late")
    assert warning.case_id is not None
    operator = f.officer("operator", unit=notifier.settings.case_unit)
    case = (await coordination.get(f"/v1/cases/{warning.case_id}", headers=operator)).json()
    assert case["amount_lost"] == "12000.00"
    assert await _stops(coordination, warning.case_id, operator) == _each_drafted(PAYEES)
    flow = (await coordination.get(f"/v1/cases/{warning.case_id}/flow", headers=operator)).json()
    assert sorted(n["received"] for n in flow["nodes"]) == ["100.00"] * PAYEES  # each once


async def test_many_payees_joining_after_the_desks_word_open_the_case(coordination, notifier, sessions):
    """The desk heard "defrauded" while nothing was at risk; the episode's revision then brings 120
    payments to 120 accounts: the alerts consumer opens the case and drafts them all (it does not fail
    the batch until it stops, leaving every later alert unwarned), and warns the next person."""
    phone = f.phone()
    first = await notifier.alert(phone, score=0.97, amount_at_risk=None, event_time=f.minutes_ago(10))
    task = await eventually(lambda: desk_task_for(sessions, phone), timeout_s=10)
    await desk_closes(
        notifier.client, task.id, f.officer("operator"), outcome="reached_too_late", defrauded=True
    )
    payments = _paid_to_many(PAYEES, f.minutes_ago(5))
    revision = first.model_copy(
        update={
            "revision": 2,
            "payments": payments,
            "amount_at_risk": "12000.00",
            "triggering_event_ids": [*first.triggering_event_ids, *(p.event_ref for p in payments)],
        }
    )
    await notifier.send(revision)
    next_person = f.phone()
    await notifier.alert(next_person)  # the consumer goes on: they are warned

    async def opened() -> Any:
        [warning] = await warnings_for(sessions, phone)
        return warning.case_id

    case_id = await eventually(opened, timeout_s=30)
    operator = f.officer("operator", unit=notifier.settings.case_unit)
    assert await _stops(coordination, case_id, operator) == _each_drafted(PAYEES)
    assert await eventually(lambda: messages_to(notifier.sms.receiver, next_person), timeout_s=20)


async def test_defrauded_with_nothing_at_risk_waits_for_the_first_payment(coordination, notifier, sessions):
    """An alert of "0.00" at risk (no payment yet): the person's "I am being defrauded" and then the desk's
    are both taken (no 500), the call back is at the top of the desk's queue, and no case is opened on
    nothing; the episode's first payment, 30,000 CNY to bank-x/MULE0001, opens it and drafts the stop."""
    phone = f.phone()
    first = await notifier.alert(phone, score=0.97, amount_at_risk="0.00", event_time=f.minutes_ago(10))
    answered = await _answers(notifier, phone, "defrauded")
    assert answered.status_code == 200, answered.text
    [warning] = await warnings_for(sessions, phone)
    assert (warning.answer, warning.outcome, warning.case_id) == ("defrauded", "reached_too_late", None)
    task = await desk_task_for(sessions, phone)
    assert task is not None and (task.status, task.priority) == ("open", 1.0)
    await desk_closes(
        notifier.client, task.id, f.officer("operator"), outcome="reached_too_late", defrauded=True
    )
    [warning] = await warnings_for(sessions, phone)
    assert warning.desk_defrauded_at is not None and warning.case_id is None

    paid = AlertPayment(
        event_ref=f"bank-a:{f.unique('tr')}",
        amount="30000.00",
        occurred_at=first.event_time + timedelta(minutes=5),
        payee_account="MULE0001",
        payee_institution="bank-x",
    )
    revision = first.model_copy(
        update={
            "revision": 2,
            "payments": [paid],
            "amount_at_risk": "30000.00",
            "triggering_event_ids": [*first.triggering_event_ids, paid.event_ref],
            "event_time": paid.occurred_at,
        }
    )
    await notifier.send(revision)

    async def at_risk() -> bool:
        [warning] = await warnings_for(sessions, phone)
        return warning.amount_at_risk == Decimal("30000.00")

    await eventually(at_risk, timeout_s=10)
    [warning] = await warnings_for(sessions, phone)
    assert warning.case_id is not None
    operator = f.officer("operator", unit=notifier.settings.case_unit)
    assert await _stops(coordination, warning.case_id, operator) == [("MULE0001", "30000.00", "open")]
    case = (await coordination.get(f"/v1/cases/{warning.case_id}", headers=operator)).json()
    assert case["title"] == "Citizen answered a warning: being defrauded"  # their word came first
    assert [n["text"] for n in case["notes"]] == [
        f"The person answered a citizen warning: being defrauded (warning {warning.id}). Nothing was at"
        " risk then: the payment that followed opened this case."
    ]
