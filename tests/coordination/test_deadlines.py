"""Deadlines on time, by themselves: a stop-payment's period runs from its issue, and once it is over the
hold lapses and the bank is told; an unanswered instruction is escalated for acknowledgement, then
execution."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import update

from services.coordination.instructions.models import Instruction
from services.kit.db import unit_of_work
from streams import topics
from tests import factories as f
from tests.coordination.conftest import App, bank, issue, lapse_now, open_case, respond, running, stop_issued
from tests.kafka_tools import eventually, read_topic
from tests.metrics import sample

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def short(infra, coord: App) -> AsyncIterator[App]:
    """A second instance with short periods (the shared one relays its messages)."""
    async with running(
        infra,
        consume=False,
        relay=False,
        stop_payment_period_s=3600.0,
        ack_deadline_s={"query": 0.5},
        exec_deadline_s={"query": 1.2},
    ) as app:
        yield app


async def _get(app: App, headers: dict[str, str], iid: str) -> dict[str, object]:
    return dict((await app.client.get(f"/v1/instructions/{iid}", headers=headers)).json())


async def test_stop_payment_lapses_and_the_bank_is_told(infra, short, sessions):
    op = f.officer()
    inst, key, case_id, stop = await stop_issued(short, sessions, op, "3000.00")
    assert (
        await respond(short.client, key, stop["id"], "executed", held_amount="3000.00")
    ).status_code == 200
    flow = (await short.client.get(f"/v1/cases/{case_id}/flow", headers=op)).json()
    assert flow["totals"]["stopped"] == "3000.00"
    held = await _get(short, op, stop["id"])
    issued_at = datetime.fromisoformat(str(held["issued_at"]))
    assert datetime.fromisoformat(str(held["expires_at"])) == issued_at + timedelta(hours=1)

    lapsed_before = await sample(short.client, "stopline_holds_expired_total", kind="stop_payment")
    await lapse_now(short, sessions, op, stop)  # the hour passes
    flow = (await short.client.get(f"/v1/cases/{case_id}/flow", headers=op)).json()
    assert flow["totals"]["stopped"] == "0.00"
    topic = topics.name(topics.instructions_for(inst), infra.prefix)
    records = await read_topic(
        infra.kafka,
        topic,
        until=lambda rs: any(orjson.loads(r.value)["message_id"] == f"{stop['id']}:expired" for r in rs),
    )
    notice = next(orjson.loads(r.value) for r in records if orjson.loads(r.value)["type"] == "notice")
    assert notice["notice"] == "expired" and notice["instruction_id"] == stop["id"]
    audit = (await short.client.get(f"/v1/audit?entity_id={stop['id']}", headers=f.officer("auditor"))).json()
    assert [e["action"] for e in audit["items"]][-1] == "instruction.expired"
    assert audit["items"][-1]["actor_role"] == "system"
    assert (
        await sample(short.client, "stopline_holds_expired_total", kind="stop_payment") == lapsed_before + 1
    )


async def test_an_answer_given_before_the_lapse_and_read_after_it_is_kept(infra, short, sessions):
    # The bank answered while the hold was in force; this service read the answer only after its expiry
    # job had lapsed the hold (it was behind). The answer is stored and audited, the hold stays lapsed;
    # an answer given after the lapse is still refused.
    op = f.officer()
    _, key, _, stop = await stop_issued(short, sessions, op, "900.00")
    lapse_at = await lapse_now(short, sessions, op, stop)
    issued_at = datetime.fromisoformat(str((await _get(short, op, stop["id"]))["issued_at"]))
    in_force = issued_at + (lapse_at - issued_at) / 2  # a time between the issue and the hold's end
    given = str(uuid.uuid4())

    async def answer_at(at: datetime, outcome: str, **body: str) -> httpx.Response:
        return await respond(short.client, key, stop["id"], outcome, responded_at=at.isoformat(), **body)

    kept = await answer_at(in_force, "executed", response_id=given, held_amount="900.00")
    late = await answer_at(lapse_at + timedelta(seconds=1), "executed", held_amount="900.00")
    # Nor is a second final answer (backdated or not), nor one "given" before the instruction existed.
    again = await answer_at(in_force, "rejected", reason="no such hold")
    before_issue = await answer_at(issued_at - timedelta(seconds=1), "acknowledged")

    assert kept.status_code == 200 and kept.json()["status"] == "expired"
    assert late.status_code == 409, late.text
    assert again.status_code == 409 and before_issue.status_code == 409
    stored = (await short.client.get(f"/v1/instructions/{stop['id']}/responses", headers=op)).json()
    assert [(r["response_id"], r["outcome"], r["held_amount"]) for r in stored] == [
        (given, "executed", "900.00")
    ]
    assert (await _get(short, op, stop["id"]))["status"] == "expired"
    audit = (await short.client.get(f"/v1/audit?entity_id={stop['id']}", headers=f.officer("auditor"))).json()
    actions = [e["action"] for e in audit["items"]]
    assert actions[-2:] == ["instruction.expired", "instruction.answered_after_lapse"]


async def _extension_approved(
    app: App, sessions: Any, op: dict[str, str]
) -> tuple[str, dict[str, str], dict[str, Any], dict[str, Any]]:
    """A stop-payment its bank executed, and an extension of it a supervisor approved (sent to the bank):
    (the bank, its headers, the stop, the extension)."""
    inst, key, case_id, stop = await stop_issued(app, sessions, op, "3000.00")
    assert (await respond(app.client, key, stop["id"], "executed", held_amount="3000.00")).status_code == 200
    extension = await issue(
        app.client, op, case_id, kind="extend", parent_id=stop["id"], document_number="EXT-1"
    )
    approved = await app.client.post(
        f"/v1/instructions/{extension['id']}/approve", headers=f.officer("supervisor")
    )
    assert approved.status_code == 200
    return inst, key, stop, extension


async def test_an_extension_executed_after_its_hold_lapsed_is_cancelled_and_the_bank_told(
    infra, short, sessions
):
    """An approved extension is with the bank when its stop-payment lapses (the bank was told so); the
    bank then answers the extension executed. Nothing extends a hold no longer in force: the extension is
    cancelled, with why, the answer kept, and the bank told, so it keeps nothing held under it."""
    op = f.officer()
    inst, key, stop, extension = await _extension_approved(short, sessions, op)
    await lapse_now(short, sessions, op, stop)

    answered = await respond(short.client, key, extension["id"], "executed")
    assert answered.status_code == 200, answered.text
    got = await _get(short, op, extension["id"])
    assert got["status"] == "cancelled"
    assert "no longer in force" in str(got["outcome_reason"])
    held = await _get(short, op, stop["id"])
    assert (held["status"], held["renewals"]) == ("expired", 0)
    stored = (await short.client.get(f"/v1/instructions/{extension['id']}/responses", headers=op)).json()
    assert [r["outcome"] for r in stored] == ["executed"]
    topic = topics.name(topics.instructions_for(inst), infra.prefix)
    cancelled = f"{extension['id']}:cancelled"
    await read_topic(
        infra.kafka, topic, until=lambda rs: any(orjson.loads(r.value)["message_id"] == cancelled for r in rs)
    )


async def test_an_extension_given_up_then_executed_after_its_hold_lapsed_extends_nothing(
    infra, short, sessions
):
    """The relay gave the extension up (its bank did not answer in time), the hold lapsed, and then the
    bank, which had it after all, answers it executed: kept beside it, not applied, the bank told it is
    cancelled; the hold stays lapsed."""
    op = f.officer()
    _, key, stop, extension = await _extension_approved(short, sessions, op)
    async with unit_of_work(sessions) as session:  # as the relay leaves it when it gives delivery up
        await session.execute(
            update(Instruction).where(Instruction.id == uuid.UUID(extension["id"])).values(status="failed")
        )
    await lapse_now(short, sessions, op, stop)

    answered = await respond(short.client, key, extension["id"], "executed")
    assert answered.status_code == 200, answered.text
    assert (await _get(short, op, extension["id"]))["status"] == "failed"
    held = await _get(short, op, stop["id"])
    assert (held["status"], held["renewals"]) == ("expired", 0)
    audit = (
        await short.client.get(f"/v1/audit?entity_id={extension['id']}", headers=f.officer("auditor"))
    ).json()
    last = audit["items"][-1]
    assert last["action"] == "instruction.answered_after_failure"
    assert last["after"]["kept_because"] == "hold_not_in_force"


async def test_unanswered_query_is_escalated_twice(infra, short, sessions):
    op = f.officer(unit="deadline-unit")
    sup = f.officer("supervisor", unit="deadline-unit")
    inst, _, _ = await bank(sessions)
    case_id = await open_case(short.client, op, (inst, f.account("MULE"), "900.00"))
    escalated = [
        await sample(short.client, "stopline_escalations_total", kind="query", stage=stage)
        for stage in ("acknowledgement", "execution")
    ]
    query = await issue(
        short.client, op, case_id, kind="query", institution_id=inst, account=f.account("MULE")
    )

    async def overdue(stage: str) -> bool:
        listed = (await short.client.get("/v1/instructions?overdue=true", headers=sup)).json()
        return any(i["id"] == query["id"] and i["overdue"] == stage for i in listed)

    await eventually(lambda: overdue("acknowledgement"), timeout_s=5)
    await eventually(lambda: overdue("execution"), timeout_s=5)
    records = await read_topic(
        infra.kafka,
        topics.name(topics.ESCALATIONS, infra.prefix),
        until=lambda rs: sum(orjson.loads(r.value).get("instruction_id") == query["id"] for r in rs) >= 2,
    )
    # Other tests' escalations share the topic, some not of an instruction (a citizen's desk task).
    stages = [
        orjson.loads(r.value)["stage"]
        for r in records
        if orjson.loads(r.value).get("instruction_id") == query["id"]
    ]
    assert stages == ["acknowledgement", "execution"]
    assert [
        await sample(short.client, "stopline_escalations_total", kind="query", stage=stage)
        for stage in ("acknowledgement", "execution")
    ] == [escalated[0] + 1, escalated[1] + 1]
