"""A hold's follow-ups as the bank carries them out: a release in part keeps the rest held, returns are of
a freeze's released money and counted as the bank returned it, answers are bounded by what was instructed;
and the answers and decisions around them (a stop-payment executed after its freeze, a late
acknowledgement, a decline's reason, a request key sent again with a correction)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from services.coordination.delivery.models import OutboxMessage
from services.coordination.instructions import answers
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.service import Context
from services.kit.db import unit_of_work
from streams.schemas.instructions import Response
from tests import factories as f
from tests.coordination.conftest import App, bank, issue, open_case, respond, stop_in_force, stop_issued
from tests.kafka_tools import eventually
from tests.locks import backend, blocked_by

pytestmark = pytest.mark.integration


async def _freeze_in_force(
    coord: App, sessions: Any, op: dict[str, str], sup: dict[str, str], amount: str = "1200.00"
) -> tuple[dict[str, str], str, dict[str, Any]]:
    """A bank's key, a case, and a freeze of `amount` a supervisor approved and the bank executed."""
    c = coord.client
    inst, key, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, amount))
    freeze = await issue(
        c,
        op,
        case_id,
        kind="freeze",
        institution_id=inst,
        account=account,
        amount=amount,
        document_number="F-1",
    )
    assert (await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=sup)).status_code == 200
    assert (await respond(c, key, freeze["id"], "executed", held_amount=amount)).status_code == 200
    return key, case_id, freeze


async def _release(
    coord: App,
    op: dict[str, str],
    sup: dict[str, str],
    key: dict[str, str],
    case_id: str,
    hold: dict[str, Any],
    outcome: str = "executed",
    **answer: str,
) -> tuple[dict[str, Any], httpx.Response]:
    """A release of `hold`, approved, and the bank's answer to it."""
    c = coord.client
    release = await issue(c, op, case_id, kind="release", parent_id=hold["id"], document_number="R-1")
    assert (await c.post(f"/v1/instructions/{release['id']}/approve", headers=sup)).status_code == 200
    return release, await respond(c, key, release["id"], outcome, **answer)


async def _get(coord: App, op: dict[str, str], instruction_id: str) -> dict[str, Any]:
    got: dict[str, Any] = (await coord.client.get(f"/v1/instructions/{instruction_id}", headers=op)).json()
    return got


async def _totals(coord: App, op: dict[str, str], case_id: str) -> dict[str, str]:
    flow = (await coord.client.get(f"/v1/cases/{case_id}/flow", headers=op)).json()
    return {k: v for k, v in flow["totals"].items() if k in ("stopped", "frozen", "returned")}


async def _returnable(coord: App, op: dict[str, str], case_id: str, freeze_id: str) -> str:
    """What the case's detail says is left to return of a freeze (the console's Return button)."""
    detail = (await coord.client.get(f"/v1/cases/{case_id}", headers=op)).json()
    [freeze] = [i for i in detail["instructions"] if i["id"] == freeze_id]
    left: str = freeze["returnable_amount"]
    return left


def _return_body(hold: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"kind": "return_funds", "parent_id": hold["id"], **more}


def _problem(response: httpx.Response) -> tuple[int, list[str]]:
    details = response.json()["error"].get("details") or []
    fields = [d["field"] for d in details] if isinstance(details, list) else [details.get("field")]
    return response.status_code, fields


async def test_a_release_in_part_keeps_the_rest_held_and_returns_only_what_was_released(coord, sessions):
    """The bank released 500 of the 1,200 it holds: the freeze stays in force for 700 (it lapses with its
    period, or another release ends it), and only the 500 released can be returned."""
    c = coord.client
    op, sup = f.officer(unit="fu1-unit"), f.officer("supervisor", unit="fu1-unit")
    key, case_id, freeze = await _freeze_in_force(coord, sessions, op, sup)
    release, answered = await _release(
        coord, op, sup, key, case_id, freeze, "partially_executed", held_amount="500.00", reason="700 seized"
    )
    assert answered.status_code == 200, answered.text
    held = await _get(coord, op, freeze["id"])
    assert (held["status"], held["held_amount"]) == ("executed", "700.00")
    assert await _totals(coord, op, case_id) == {"stopped": "0.00", "frozen": "700.00", "returned": "0.00"}
    auditor = f.officer("auditor")
    audit = (await c.get(f"/v1/audit?entity_id={freeze['id']}", headers=auditor)).json()["items"]
    [entry] = [e for e in audit if e["action"] == "instruction.partially_released"]
    assert entry["before"]["held_amount"] == "1200.00" and entry["after"]["held_amount"] == "700.00"
    # What was released is returned; no more, while the rest is held.
    first = await issue(c, op, case_id, **_return_body(freeze))
    assert first["amount"] == "500.00"
    more = await c.post(f"/v1/cases/{case_id}/instructions", json=_return_body(freeze), headers=op)
    assert _problem(more) == (422, ["body.amount"]), more.text
    # The rest is released by another release, of what is held now.
    rest, answered = await _release(coord, op, sup, key, case_id, freeze)
    assert rest["amount"] == "700.00" and answered.status_code == 200
    assert (await _get(coord, op, freeze["id"]))["status"] == "released"
    assert (await respond(c, key, first["id"], "executed")).status_code == 200
    second = await issue(c, op, case_id, **_return_body(freeze))
    assert second["amount"] == "700.00"
    assert (await respond(c, key, second["id"], "executed")).status_code == 200
    assert await _totals(coord, op, case_id) == {"stopped": "0.00", "frozen": "0.00", "returned": "1200.00"}
    assert release["id"] != rest["id"]


async def test_a_partial_release_states_a_part(coord, sessions):
    """A part is more than nothing and less than the whole; the amount is what the rest is counted from."""
    op, sup = f.officer(unit="fu2-unit"), f.officer("supervisor", unit="fu2-unit")
    key, case_id, freeze = await _freeze_in_force(coord, sessions, op, sup)
    release, _ = await _release(coord, op, sup, key, case_id, freeze, "acknowledged")
    for held in ({}, {"held_amount": "0.00"}, {"held_amount": "1200.00"}, {"held_amount": "1500.00"}):
        refused = await respond(coord.client, key, release["id"], "partially_executed", reason="r", **held)
        assert _problem(refused) == (422, ["body.held_amount"]), (held, refused.text)
    assert (await _get(coord, op, freeze["id"]))["held_amount"] == "1200.00"


async def test_a_return_answer_cannot_claim_more_than_instructed(coord, sessions):
    c = coord.client
    op, sup = f.officer(unit="fu3-unit"), f.officer("supervisor", unit="fu3-unit")
    key, case_id, freeze = await _freeze_in_force(coord, sessions, op, sup)
    release, answered = await _release(coord, op, sup, key, case_id, freeze)
    assert answered.status_code == 200
    ret = await issue(c, op, case_id, **_return_body(freeze))
    refused = await respond(c, key, ret["id"], "executed", held_amount="999999.00")
    assert _problem(refused) == (422, ["body.held_amount"]), refused.text
    assert (await _totals(coord, op, case_id))["returned"] == "0.00"
    assert (await _get(coord, op, ret["id"]))["status"] in ("issued", "delivered")
    # A release's answer too (whatever the bank says it released, it was asked for the hold).
    other_key, other_case, other = await _freeze_in_force(coord, sessions, op, sup)
    release, too_much = await _release(coord, op, sup, other_key, other_case, other, held_amount="5000.00")
    assert _problem(too_much) == (422, ["body.held_amount"]), too_much.text
    # An executed release of less than it was asked is a part, said as such (else the hold would end
    # whole while only the stated amount could be returned).
    short = await respond(c, other_key, release["id"], "executed", held_amount="1.00")
    assert _problem(short) == (422, ["body.held_amount"]), short.text


async def test_the_rest_of_a_partial_return_is_returned_and_counted(coord, sessions):
    """Returned is what the bank returned; a return still open counts its amount, so two are never under
    way for the same money."""
    c = coord.client
    op, sup = f.officer(unit="fu4-unit"), f.officer("supervisor", unit="fu4-unit")
    key, case_id, freeze = await _freeze_in_force(coord, sessions, op, sup)
    assert await _returnable(coord, op, case_id, freeze["id"]) == "0"  # nothing released yet
    await _release(coord, op, sup, key, case_id, freeze)
    assert await _returnable(coord, op, case_id, freeze["id"]) == "1200.00"
    first = await issue(c, op, case_id, **_return_body(freeze))
    assert first["amount"] == "1200.00"
    assert await _returnable(coord, op, case_id, freeze["id"]) == "0.00"  # all of it under way
    part = await respond(c, key, first["id"], "partially_executed", held_amount="400.00", reason="part")
    assert part.status_code == 200, part.text
    assert (await _totals(coord, op, case_id))["returned"] == "400.00"
    assert await _returnable(coord, op, case_id, freeze["id"]) == "800.00"
    rest = await issue(c, op, case_id, **_return_body(freeze))
    assert rest["amount"] == "800.00"
    in_flight = await c.post(f"/v1/cases/{case_id}/instructions", json=_return_body(freeze), headers=op)
    assert _problem(in_flight) == (422, ["body.amount"]), in_flight.text
    assert (await respond(c, key, rest["id"], "executed")).status_code == 200
    assert (await _totals(coord, op, case_id))["returned"] == "1200.00"
    assert await _returnable(coord, op, case_id, freeze["id"]) == "0.00"  # the console shows no Return
    dashboard = (await c.get("/v1/dashboard", headers=op)).json()
    assert Decimal(str(dashboard["amounts"]["returned"])) == Decimal("1200.00")  # the unit's


async def test_funds_are_returned_from_a_freeze(coord, sessions):
    """A stop-payment is provisional: money is frozen before it is returned (冻结资金返还)."""
    c = coord.client
    op, sup = f.officer(unit="fu5-unit"), f.officer("supervisor", unit="fu5-unit")
    key, case_id, stop = await stop_in_force(coord, sessions, op)
    _, answered = await _release(coord, op, sup, key, case_id, stop)
    assert answered.status_code == 200 and (await _get(coord, op, stop["id"]))["status"] == "released"
    refused = await c.post(f"/v1/cases/{case_id}/instructions", json=_return_body(stop), headers=op)
    assert _problem(refused) == (422, ["body.parent_id"]), refused.text
    # A freeze not released yet: nothing released to return.
    _, other_case, freeze = await _freeze_in_force(coord, sessions, op, sup)
    early = await c.post(f"/v1/cases/{other_case}/instructions", json=_return_body(freeze), headers=op)
    assert early.status_code == 409 and early.json()["error"]["details"]["current_status"] == "executed"


async def test_a_stop_payment_executed_after_its_freeze_is_converted(coord, sessions):
    """The freeze was executed before the bank answered the stop-payment: the freeze takes it over, as it
    takes over one in force; the money is counted once."""
    c = coord.client
    op, sup = f.officer(unit="fu6-unit"), f.officer("supervisor", unit="fu6-unit")
    inst, key, _ = await bank(sessions)
    case_id, hold, stop, freeze = await _stop_and_approved_freeze(c, op, sup, inst, "1200.00")
    assert (await respond(c, key, freeze["id"], "executed", held_amount="1200.00")).status_code == 200
    assert (await respond(c, key, stop["id"], "executed", held_amount="1200.00")).status_code == 200
    assert (await _get(coord, op, stop["id"]))["status"] == "converted"
    assert await _totals(coord, op, case_id) == {"stopped": "0.00", "frozen": "1200.00", "returned": "0.00"}
    # At the bank it is a hold of its own, beside the freeze: the bank is told to lift it.
    async with sessions() as s:
        sent = select(OutboxMessage.message_id).where(OutboxMessage.instruction_id == uuid.UUID(stop["id"]))
        assert f"{stop['id']}:cancelled" in list((await s.execute(sent)).scalars())
    # Another case's freeze of the same account does not take this case's stop-payment over.
    other_case = await open_case(c, op, (inst, hold["account"], "300.00"))
    other = await issue(c, op, other_case, kind="stop_payment", **{**hold, "amount": "300.00"})
    assert (await respond(c, key, other["id"], "executed", held_amount="300.00")).status_code == 200
    assert (await _get(coord, op, other["id"]))["status"] == "executed"


async def test_a_hold_of_nothing_is_not_executed(coord, sessions):
    """A bank that held nothing answers rejected; an executed hold of 0 would be "in force" with nothing
    to release, and its release would go out without an amount (read: release everything)."""
    c = coord.client
    op = f.officer(unit="fu7-unit")
    _, key, case_id, stop = await stop_issued(coord, sessions, op, "1200.00")
    for outcome in ("executed", "partially_executed"):
        refused = await respond(c, key, stop["id"], outcome, held_amount="0.00", reason="empty")
        assert _problem(refused) == (422, ["body.held_amount"]), refused.text
    assert (await respond(c, key, stop["id"], "rejected", reason="no funds")).status_code == 200
    # One stored before this rule: nothing to release, it lapses by itself.
    key, case_id, stop = await stop_in_force(coord, sessions, op)
    async with unit_of_work(sessions) as s:
        await s.execute(
            update(Instruction).where(Instruction.id == uuid.UUID(stop["id"])).values(held_amount=0)
        )
    release = await c.post(
        f"/v1/cases/{case_id}/instructions",
        json={"kind": "release", "parent_id": stop["id"], "document_number": "R-0"},
        headers=op,
    )
    assert release.status_code == 409 and release.json()["error"]["details"]["held_amount"] == "0.00"


async def test_a_request_key_sent_again_with_a_corrected_beneficiary_is_a_conflict(coord, sessions):
    c = coord.client
    op, sup = f.officer(sub="fu8-op", unit="fu8-unit"), f.officer("supervisor", unit="fu8-unit")
    key, case_id, freeze = await _freeze_in_force(coord, sessions, op, sup)
    await _release(coord, op, sup, key, case_id, freeze)
    rid = str(uuid.uuid4())
    wrong = {"institution": "victim-bank", "account": "WRONG0001"}
    first = await issue(c, op, case_id, **_return_body(freeze, beneficiary=wrong, request_id=rid))
    same = await c.post(
        f"/v1/cases/{case_id}/instructions",
        json=_return_body(freeze, beneficiary=wrong, request_id=rid),
        headers=op,
    )
    assert same.status_code == 201 and same.json()["id"] == first["id"]
    for corrected, differs in (
        ({"beneficiary": {**wrong, "account": "RIGHT0001"}}, ["beneficiary_account"]),
        ({}, ["beneficiary_account"]),  # the case's victim account (bank "victim-bank" too)
    ):
        again = await c.post(
            f"/v1/cases/{case_id}/instructions",
            json=_return_body(freeze, request_id=rid, **corrected),
            headers=op,
        )
        assert again.status_code == 409, again.text
        assert again.json()["error"]["details"] == {"field": "body.request_id", "differs": differs}


async def test_a_decline_states_why(coord, sessions):
    c = coord.client
    op, sup = f.officer(unit="fu9-unit"), f.officer("supervisor", unit="fu9-unit")
    inst, _, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "700.00"))
    freeze = await issue(
        c, op, case_id, kind="freeze", institution_id=inst, account=account, document_number="D"
    )
    for body in ({}, {"note": None}, {"note": "   "}):
        refused = await c.post(f"/v1/instructions/{freeze['id']}/decline", json=body, headers=sup)
        assert _problem(refused) == (422, ["body.note"]), refused.text
    assert (await _get(coord, op, freeze["id"]))["status"] == "awaiting_approval"
    declined = await c.post(
        f"/v1/instructions/{freeze['id']}/decline", json={"note": " no document "}, headers=sup
    )
    assert declined.status_code == 200 and declined.json()["decision_note"] == "no document"


async def test_an_acknowledgement_after_the_final_answer_is_kept(coord, sessions):
    c = coord.client
    op = f.officer(unit="fu10-unit")
    key, _, stop = await stop_in_force(coord, sessions, op)
    late = await respond(c, key, stop["id"], "acknowledged")
    assert late.status_code == 200, late.text
    got = await _get(coord, op, stop["id"])
    assert (got["status"], got["held_amount"]) == ("executed", "1200.00")
    answers = (await c.get(f"/v1/instructions/{stop['id']}/responses", headers=op)).json()
    assert [a["outcome"] for a in answers] == ["executed", "acknowledged"]
    auditor = f.officer("auditor")
    audit = (await c.get(f"/v1/audit?entity_id={stop['id']}", headers=auditor)).json()["items"]
    assert audit[-1]["action"] == "instruction.acknowledged_after_answer"
    # Another final answer is still an illegal move.
    again = await respond(c, key, stop["id"], "rejected", reason="changed our mind")
    assert again.status_code == 409


async def test_the_institution_list_names_an_unknown_status(coord, sessions):
    _, key, _ = await bank(sessions)
    refused = await coord.client.get("/v1/institution/instructions?status=done", headers=key)
    assert _problem(refused) == (422, ["query.status"]), refused.text
    ok = await coord.client.get("/v1/institution/instructions?status=executed", headers=key)
    assert ok.status_code == 200
    officers = await coord.client.get("/v1/instructions?status=done", headers=f.officer())
    assert _problem(officers) == (422, ["query.status"]), officers.text


@pytest.mark.usefixtures("relays_paused")  # (a relay marking the two delivered would wait for the test too)
@pytest.mark.parametrize("first", ["stop_payment", "freeze"])
async def test_a_stop_payment_and_its_freeze_answered_at_once_leave_one_hold(coord, sessions, infra, first):
    """Answers crossing: each looks for the other in force; neither may miss the other. The first answer,
    in the test's transaction, has put its hold in force (not yet committed) as the other's comes: that one
    waits for it, and then finds it in force."""
    c = coord.client
    op, sup = f.officer(unit="fu11-unit"), f.officer("supervisor", unit="fu11-unit")
    inst, key, _ = await bank(sessions)
    case_id, _, stop, freeze = await _stop_and_approved_freeze(c, op, sup, inst, "900.00")
    one, other = (stop, freeze) if first == "stop_payment" else (freeze, stop)
    ctx = Context(coord.settings, infra.common.topic_prefix, infra.common.event_max_ahead_s)
    executed = Response(
        response_id=uuid.uuid4(),
        instruction_id=uuid.UUID(one["id"]),
        institution_id=inst,
        outcome="executed",
        held_amount=Decimal("900.00"),
        responded_at=datetime.now(UTC),
    )
    async with unit_of_work(sessions) as answering:
        pid = await backend(answering)
        await answers.answer(answering, response=executed, channel="api", ctx=ctx)
        later = asyncio.create_task(respond(c, key, other["id"], "executed", held_amount="900.00"))
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)  # the other waits for the first
    assert (await later).status_code == 200
    assert (await _get(coord, op, stop["id"]))["status"] == "converted"
    assert (await _get(coord, op, freeze["id"]))["status"] == "executed"
    assert (await _totals(coord, op, case_id))["frozen"] == "900.00"


async def _stop_and_approved_freeze(
    c: httpx.AsyncClient, op: dict[str, str], sup: dict[str, str], inst: str, amount: str
) -> tuple[str, dict[str, str], dict[str, Any], dict[str, Any]]:
    """A case on a new account of `inst`, its stop-payment issued, its freeze approved (none answered)."""
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, amount))
    hold = {"institution_id": inst, "account": account, "amount": amount}
    stop = await issue(c, op, case_id, kind="stop_payment", **hold)
    freeze = await issue(c, op, case_id, kind="freeze", document_number="D-F", **hold)
    assert (await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=sup)).status_code == 200
    return case_id, hold, stop, freeze
