"""The instruction state machine and approval rules: illegal moves get 409 with the current state."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from services.coordination.instructions import states
from services.kit.db import unit_of_work
from services.kit.errors import Conflict
from tests import factories as f
from tests.coordination.conftest import (
    bank,
    freeze_awaiting_approval,
    issue,
    open_case,
    respond,
    stop_in_force,
    waiting_on_a_lock,
)
from tests.kafka_tools import eventually


def test_final_states_never_change():
    for status in ("rejected", "account_not_found", "declined", "cancelled", "expired", "released"):
        assert states.allowed("stop_payment", status) == frozenset()
    # Failed (delivery given up) takes only an answer: the institution had the instruction after all.
    assert states.allowed("stop_payment", "failed") == states.ANSWERS
    # An instruction awaiting its answer may be withdrawn, unless it is a hold (it lapses, or is released).
    for status in ("issued", "delivered", "acknowledged"):
        assert "cancelled" in states.allowed("query", status)
        assert "cancelled" in states.allowed("release", status)
        assert "cancelled" not in states.allowed("stop_payment", status)
        assert "cancelled" not in states.allowed("freeze", status)
    with pytest.raises(Conflict) as err:
        states.check(kind="query", current="executed", target="expired")
    assert err.value.details["current_status"] == "executed"


@pytest.mark.integration
async def test_illegal_answers_and_decisions_get_409_with_current_state(coord, sessions):
    c = coord.client
    op, sup = f.officer(unit="sm-unit"), f.officer("supervisor", unit="sm-unit")
    inst, key, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "5000.00"))
    stop = await issue(
        c, op, case_id, kind="stop_payment", institution_id=inst, account=account, amount="5000.00"
    )
    assert (await respond(c, key, stop["id"], "rejected", reason="account closed")).status_code == 200
    again = await respond(c, key, stop["id"], "executed", held_amount="5000.00")
    assert again.status_code == 409
    assert again.json()["error"]["details"]["current_status"] == "rejected"

    # Approving what needs no approval, or twice.
    approve = await c.post(f"/v1/instructions/{stop['id']}/approve", headers=sup)
    assert approve.status_code == 409 and approve.json()["error"]["details"]["current_status"] == "rejected"
    freeze = await issue(
        c,
        op,
        case_id,
        kind="freeze",
        institution_id=inst,
        account=account,
        amount="5000.00",
        document_number="DOC-1",
    )
    assert (await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=sup)).status_code == 200
    twice = await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=sup)
    # The 409 names the status it had: issued, or delivered if the relay was quicker than this request.
    assert twice.status_code == 409 and twice.json()["error"]["details"]["current_status"] in (
        "issued",
        "delivered",
    )
    cancel = await c.post(f"/v1/instructions/{freeze['id']}/cancel", headers=op)
    assert cancel.status_code == 409

    # Releasing a hold that is not in force yet.
    release = await c.post(
        f"/v1/cases/{case_id}/instructions",
        json={"kind": "release", "parent_id": freeze["id"], "document_number": "DOC-2"},
        headers=op,
    )
    # The relay may have delivered the freeze by now: either way it is not in force yet.
    assert release.status_code == 409
    assert release.json()["error"]["details"]["current_status"] in ("issued", "delivered")


@pytest.mark.integration
async def test_approval_needs_a_supervisor_other_than_the_issuer(coord, sessions):
    c = coord.client
    boss = f.officer("supervisor", sub="boss-1", unit="ap-unit")
    _, freeze = await freeze_awaiting_approval(coord, sessions, boss)
    own = await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=boss)
    assert own.status_code == 403
    by_operator = await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=f.officer(unit="ap-unit"))
    assert by_operator.status_code == 403
    other_unit = await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=f.officer("supervisor"))
    assert other_unit.status_code == 404
    ok = await c.post(
        f"/v1/instructions/{freeze['id']}/approve", headers=f.officer("supervisor", unit="ap-unit")
    )
    assert ok.status_code == 200 and ok.json()["approved_by"] != "boss-1"


@pytest.mark.integration
async def test_a_freeze_awaiting_approval_is_not_approved_once_its_case_is_closed(coord, sessions):
    c = coord.client
    op, sup = f.officer(unit="cl-unit"), f.officer("supervisor", unit="cl-unit")
    case_id, freeze = await freeze_awaiting_approval(coord, sessions, op)
    # Closed around the API (which refuses to close a case with a request pending): approval still looks.
    async with unit_of_work(sessions) as s:
        await s.execute(
            text("update cases set status = 'closed', outcome = 'false_alarm' where id = :id"),
            {"id": case_id},
        )
    approve = await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=sup)
    assert approve.status_code == 409 and approve.json()["error"]["details"]["case_status"] == "closed"
    got = (await c.get(f"/v1/instructions/{freeze['id']}", headers=op)).json()
    assert got["status"] == "awaiting_approval"  # never sent to the bank


@pytest.mark.integration
async def test_an_instruction_issued_while_its_case_closes_waits_and_is_refused(coord, sessions):
    c = coord.client
    op = f.officer(unit="cl-unit")
    inst, _, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "800.00"))
    stop = {"kind": "stop_payment", "institution_id": inst, "account": account, "amount": "800.00"}
    async with sessions() as closing, closing.begin():  # a close, not committed yet
        await closing.execute(
            text("update cases set status = 'closed', outcome = 'false_alarm' where id = :id"),
            {"id": case_id},
        )
        issuing = asyncio.create_task(c.post(f"/v1/cases/{case_id}/instructions", json=stop, headers=op))
        await eventually(lambda: waiting_on_a_lock(sessions), timeout_s=10)  # the issue waits for it
    answer = await issuing
    assert answer.status_code == 409 and answer.json()["error"]["details"]["current_status"] == "closed"
    assert (await c.get(f"/v1/cases/{case_id}/instructions", headers=op)).json() == []


@pytest.mark.integration
async def test_one_release_at_a_time_and_nothing_approved_on_a_hold_no_longer_in_force(coord, sessions):
    c = coord.client
    op, sup = f.officer(unit="rl-unit"), f.officer("supervisor", unit="rl-unit")
    key, case_id, stop = await stop_in_force(coord, sessions, op)
    release = await issue(c, op, case_id, kind="release", parent_id=stop["id"], document_number="REL-1")
    second = await c.post(
        f"/v1/cases/{case_id}/instructions",
        json={"kind": "release", "parent_id": stop["id"], "document_number": "REL-2"},
        headers=op,
    )
    assert second.status_code == 409 and second.json()["error"]["details"]["release_id"] == release["id"]
    ext = await issue(c, op, case_id, kind="extend", parent_id=stop["id"], document_number="EXT-1")
    assert (await c.post(f"/v1/instructions/{release['id']}/approve", headers=sup)).status_code == 200
    assert (await respond(c, key, release["id"], "executed")).status_code == 200
    assert (await c.get(f"/v1/instructions/{stop['id']}", headers=op)).json()["status"] == "released"
    # The extension asked for while the hold was in force: nothing left to extend at the bank.
    late = await c.post(f"/v1/instructions/{ext['id']}/approve", headers=sup)
    assert late.status_code == 409 and late.json()["error"]["details"]["parent_status"] == "released"


@pytest.mark.integration
async def test_stop_payment_renews_at_most_once(coord, sessions):
    c = coord.client
    op, sup = f.officer(unit="rn-unit"), f.officer("supervisor", unit="rn-unit")
    key, case_id, stop = await stop_in_force(coord, sessions, op)
    ext = await issue(c, op, case_id, kind="extend", parent_id=stop["id"], document_number="EXT-1")
    assert ext["status"] == "awaiting_approval"
    assert (await c.post(f"/v1/instructions/{ext['id']}/approve", headers=sup)).status_code == 200
    assert (await respond(c, key, ext["id"], "executed")).status_code == 200
    renewed = (await c.get(f"/v1/instructions/{stop['id']}", headers=op)).json()
    assert renewed["renewals"] == 1 and renewed["expires_at"] > stop["expires_at"]
    second = await c.post(
        f"/v1/cases/{case_id}/instructions",
        json={"kind": "extend", "parent_id": stop["id"], "document_number": "EXT-2"},
        headers=op,
    )
    assert second.status_code == 409


@pytest.mark.integration
async def test_a_renewal_limit_above_one_counts_each_renewal_once(coord, sessions, monkeypatch):
    monkeypatch.setattr(coord.settings, "stop_payment_max_renewals", 2)
    c = coord.client
    op, sup = f.officer(unit="rn-unit"), f.officer("supervisor", unit="rn-unit")
    key, case_id, stop = await stop_in_force(coord, sessions, op)
    for n in (1, 2):
        ext = await issue(c, op, case_id, kind="extend", parent_id=stop["id"], document_number=f"EXT-{n}")
        assert (await c.post(f"/v1/instructions/{ext['id']}/approve", headers=sup)).status_code == 200
        assert (await respond(c, key, ext["id"], "executed")).status_code == 200
        assert (await c.get(f"/v1/instructions/{stop['id']}", headers=op)).json()["renewals"] == n
    third = await c.post(
        f"/v1/cases/{case_id}/instructions",
        json={"kind": "extend", "parent_id": stop["id"], "document_number": "EXT-3"},
        headers=op,
    )
    assert third.status_code == 409 and third.json()["error"]["details"]["renewals"] == 2


@pytest.mark.integration
async def test_answers_are_checked_and_idempotent(coord, sessions):
    c = coord.client
    op = f.officer()
    inst, key, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "400.00"))
    stop = await issue(
        c, op, case_id, kind="stop_payment", institution_id=inst, account=account, amount="400.00"
    )
    over = await respond(c, key, stop["id"], "executed", held_amount="401.00")
    assert over.status_code == 422
    body = {"response_id": str(uuid.uuid4()), "outcome": "executed", "held_amount": "400.00"}
    url = f"/v1/institution/instructions/{stop['id']}/responses"
    first = await c.post(url, json=body, headers=key)
    repeat = await c.post(url, json=body, headers=key)
    assert first.status_code == repeat.status_code == 200
    assert len((await c.get(f"/v1/instructions/{stop['id']}/responses", headers=op)).json()) == 1
    # The same id with another decision is not taken for a repeat (nor applied): said so.
    for other in ({"outcome": "partially_executed", "held_amount": "300.00"}, {"outcome": "rejected"}):
        changed = await c.post(url, json={**body, "held_amount": None, **other}, headers=key)
        assert changed.status_code == 409, changed.text
        assert changed.json()["error"]["details"] == {"field": "body.response_id", "outcome": "executed"}
    assert len((await c.get(f"/v1/instructions/{stop['id']}/responses", headers=op)).json()) == 1
