"""Closing a case states its outcome (confirmed fraud, false alarm, undetermined): required to close,
refused otherwise (by the API, the case service and the database), stored, shown, and recorded in the
audit log. A case is closed only once its money work is done: no hold in force, no request awaiting
approval, no instruction awaiting its institution's answer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from services.coordination.cases import repository, service
from services.coordination.cases.models import Case
from services.coordination.cases.schemas import CaseUpdate
from services.coordination.delivery.models import OutboxMessage
from services.coordination.instructions import service as instructions
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.schemas import InstructionCreate
from services.kit.auth import Officer
from services.kit.db import unit_of_work
from services.kit.errors import InvalidInput
from tests import factories as f
from tests.conftest import plain_dsn
from tests.coordination.conftest import (
    bank,
    freeze_awaiting_approval,
    issue,
    lapse_now,
    open_case,
    respond,
    stop_in_force,
    stop_issued,
    waiting_on_a_lock,
)
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration


def _fields(response) -> list[str]:
    return [d["field"] for d in response.json()["error"]["details"]]


async def test_closing_requires_an_outcome_and_records_it(coord):
    c = coord.client
    op = f.officer()
    case = await open_case(c, op)
    url = f"/v1/cases/{case}"

    refused = await c.patch(url, json={"status": "closed"}, headers=op)
    assert refused.status_code == 422
    assert _fields(refused) == ["body.outcome"]
    assert "outcome" in refused.json()["error"]["details"][0]["reason"]
    without_closing = await c.patch(
        url, json={"outcome": "false_alarm", "assignee": "officer-wu"}, headers=op
    )
    assert without_closing.status_code == 422 and _fields(without_closing) == ["body.outcome"]
    unknown = await c.patch(url, json={"status": "closed", "outcome": "probably"}, headers=op)
    assert unknown.status_code == 422 and _fields(unknown) == ["body.outcome"]
    still_open = (await c.get(url, headers=op)).json()
    assert still_open["status"] == "open" and still_open["outcome"] is None
    assert (await c.patch(url, json={"assignee": "officer-wu"}, headers=op)).status_code == 200

    closed = await c.patch(url, json={"status": "closed", "outcome": "confirmed_fraud"}, headers=op)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["outcome"] == "confirmed_fraud"
    assert (await c.get(url, headers=op)).json()["outcome"] == "confirmed_fraud"
    listed = (await c.get("/v1/cases", params={"status": "closed"}, headers=op)).json()
    assert {x["outcome"] for x in listed if x["id"] == case} == {"confirmed_fraud"}

    # A closed case is no longer worked on: its outcome is not rewritten.
    rewrite = await c.patch(url, json={"status": "closed", "outcome": "false_alarm"}, headers=op)
    assert rewrite.status_code == 409 and rewrite.json()["error"]["details"] == {"current_status": "closed"}
    assert (await c.get(url, headers=op)).json()["outcome"] == "confirmed_fraud"

    entries = (await c.get("/v1/audit", params={"case_id": case}, headers=f.officer("auditor"))).json()
    updates = [e for e in entries["items"] if e["action"] == "case.updated"]
    closing = [e for e in updates if e["after"]["status"] == "closed"][0]
    assert closing["before"]["status"] == "open" and closing["before"]["outcome"] is None
    assert closing["after"]["outcome"] == "confirmed_fraud"
    assert (await c.get("/v1/audit/verify", headers=f.officer("auditor"))).json()["ok"]


async def test_an_outcome_on_an_open_case_is_refused_and_closing_may_reassign(coord):
    c, op = coord.client, f.officer()
    case = await open_case(c, op)
    url = f"/v1/cases/{case}"
    kept_open = await c.patch(url, json={"status": "open", "outcome": "false_alarm"}, headers=op)
    assert kept_open.status_code == 422 and _fields(kept_open) == ["body.outcome"]
    assert (await c.get(url, headers=op)).json()["outcome"] is None

    closed = await c.patch(
        url, json={"status": "closed", "outcome": "false_alarm", "assignee": "officer-wu"}, headers=op
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["status"], body["outcome"], body["assignee"]) == ("closed", "false_alarm", "officer-wu")
    assert body["closed_at"] is not None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # Built without validation, as code other than the API (a flow, a script) could build it.
        (CaseUpdate.model_construct(status="closed", assignee=None, outcome=None), "states its outcome"),
        (CaseUpdate.model_construct(status=None, assignee=None, outcome="false_alarm"), "only when closing"),
    ],
)
async def test_the_case_service_refuses_an_outcome_without_closing_and_closing_without_one(
    coord, sessions, spec: CaseUpdate, message: str
):
    case_id = uuid.UUID(await open_case(coord.client, f.officer()))
    officer = Officer(subject="officer-li", unit="changji-psb", role="operator")
    async with sessions() as s:
        case = await repository.get(s, case_id)
        assert case is not None
        with pytest.raises(InvalidInput) as refused:
            await service.update(s, case=case, spec=spec, officer=officer, topic_prefix="")
        assert message in refused.value.message
        assert [d["field"] for d in refused.value.details] == ["body.outcome"]
        assert (case.status, case.outcome) == ("open", None)


@pytest.fixture
async def db(infra) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(plain_dsn(infra.database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_database_refuses_an_unknown_outcome(coord, db):
    case = await open_case(coord.client, f.officer())
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("update cases set outcome = 'maybe' where id = $1::uuid", case)


async def test_the_database_holds_an_outcome_exactly_on_closed_cases(coord, db):
    case = await open_case(coord.client, f.officer())
    with pytest.raises(asyncpg.CheckViolationError) as closing_without:
        await db.execute("update cases set status = 'closed', closed_at = now() where id = $1::uuid", case)
    assert closing_without.value.constraint_name == "ck_cases_outcome_when_closed"
    with pytest.raises(asyncpg.CheckViolationError) as open_with:
        await db.execute("update cases set outcome = 'false_alarm' where id = $1::uuid", case)
    assert open_with.value.constraint_name == "ck_cases_outcome_when_closed"
    await db.execute(
        "update cases set status = 'closed', closed_at = now(), outcome = 'undetermined' where id = $1::uuid",
        case,
    )
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("update cases set outcome = null where id = $1::uuid", case)
    assert await db.fetchval("select outcome from cases where id = $1::uuid", case) == "undetermined"


async def _close(c: httpx.AsyncClient, case_id: str, op: dict[str, str]) -> httpx.Response:
    return await c.patch(
        f"/v1/cases/{case_id}", json={"status": "closed", "outcome": "confirmed_fraud"}, headers=op
    )


def _blocking(refused: httpx.Response) -> list[tuple[str, str, str]]:
    assert refused.status_code == 409, refused.text
    return [
        (b["instruction_id"], b["kind"], b["status"]) for b in refused.json()["error"]["details"]["blocking"]
    ]


async def _stored_status(sessions, case_id: str) -> tuple[str, str | None]:
    async with sessions() as s:
        case = await s.get(Case, uuid.UUID(case_id))
        return case.status, case.outcome


async def _closings(c: httpx.AsyncClient, case_id: str) -> list[dict]:
    entries = (await c.get("/v1/audit", params={"case_id": case_id}, headers=f.officer("auditor"))).json()
    return [e for e in entries["items"] if e["action"] == "case.updated" and e["after"]["status"] == "closed"]


async def test_a_case_is_not_closed_while_its_stop_payment_holds_money_until_it_is_released(coord, sessions):
    c = coord.client
    op, sup = f.officer(unit="cc-unit"), f.officer("supervisor", unit="cc-unit")
    key, case_id, stop = await stop_in_force(coord, sessions, op)

    refused = await _close(c, case_id, op)
    assert _blocking(refused) == [(stop["id"], "stop_payment", "executed")]
    error = refused.json()["error"]
    assert error["code"] == "conflict" and "release the holds" in error["message"]
    assert error["details"]["blocking"][0]["expires_at"] == stop["expires_at"]  # when it lapses by itself
    assert await _stored_status(sessions, case_id) == ("open", None)
    assert await _closings(c, case_id) == []

    # The release asked for, then sent: the hold is in force until the bank has released it.
    release = await issue(c, op, case_id, kind="release", parent_id=stop["id"], document_number="REL-1")
    assert _blocking(await _close(c, case_id, op)) == [
        (stop["id"], "stop_payment", "executed"),
        (release["id"], "release", "awaiting_approval"),
    ]
    assert (await c.post(f"/v1/instructions/{release['id']}/approve", headers=sup)).status_code == 200
    still = _blocking(await _close(c, case_id, op))
    assert [(i, k) for i, k, _ in still] == [(stop["id"], "stop_payment"), (release["id"], "release")]
    assert still[1][2] in ("issued", "delivered")
    assert (await respond(c, key, release["id"], "executed")).status_code == 200

    closed = await _close(c, case_id, op)
    assert closed.status_code == 200, closed.text
    assert await _stored_status(sessions, case_id) == ("closed", "confirmed_fraud")
    assert len(await _closings(c, case_id)) == 1


async def test_a_case_is_not_closed_while_a_request_awaits_approval_until_it_is_decided(coord, sessions):
    c = coord.client
    op = f.officer(unit="cc-unit")
    case_id, freeze = await freeze_awaiting_approval(coord, sessions, op)

    refused = await _close(c, case_id, op)
    assert _blocking(refused) == [(freeze["id"], "freeze", "awaiting_approval")]
    assert "decide the requests awaiting approval" in refused.json()["error"]["message"]
    assert await _stored_status(sessions, case_id) == ("open", None)
    assert await _closings(c, case_id) == []

    assert (await c.post(f"/v1/instructions/{freeze['id']}/cancel", headers=op)).status_code == 200
    assert (await _close(c, case_id, op)).status_code == 200
    assert await _stored_status(sessions, case_id) == ("closed", "confirmed_fraud")


async def test_a_case_is_closed_once_its_unanswered_stop_payment_has_lapsed(coord, sessions):
    c = coord.client
    op = f.officer(unit="cc-unit")
    inst, key, case_id, stop = await stop_issued(coord, sessions, op, "900.00")
    # A rejected stop-payment holds nothing and waits for nobody: it does not keep the case open.
    other = f.account("MULE")
    rejected = await issue(
        c, op, case_id, kind="stop_payment", institution_id=inst, account=other, amount="5.00"
    )
    assert (await respond(c, key, rejected["id"], "rejected", reason="closed account")).status_code == 200

    [(blocker, kind, status)] = _blocking(await _close(c, case_id, op))  # sent, not answered yet
    assert (blocker, kind) == (stop["id"], "stop_payment") and status in ("issued", "delivered")
    await lapse_now(coord, sessions, op, stop)

    assert (await _close(c, case_id, op)).status_code == 200
    assert await _stored_status(sessions, case_id) == ("closed", "confirmed_fraud")


async def test_a_late_answer_to_a_failed_hold_of_a_case_closed_since_is_kept_and_the_hold_cancelled(
    coord, sessions
):
    """A failed stop-payment does not keep its case open (its delivery was given up), but its last attempt may
    have reached the bank, which then executes it: the answer must not put a hold in force on a closed case,
    which nobody could release. It is kept and audited, and the bank is told the instruction is cancelled."""
    c = coord.client
    op = f.officer(unit="cc-unit")
    _, key, case_id, stop = await stop_issued(coord, sessions, op, "900.00")
    async with sessions() as s, s.begin():  # (the relay's giving up is tested in test_delivery)
        await s.execute(
            sa.update(Instruction).where(Instruction.id == uuid.UUID(stop["id"])).values(status="failed")
        )
    assert (await _close(c, case_id, op)).status_code == 200

    # Acknowledged, then executed: each kept, the bank told once (a second notice would be refused by the
    # outbox's unique message id).
    acknowledged = await respond(c, key, stop["id"], "acknowledged")
    assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "failed"
    late = await respond(c, key, stop["id"], "executed", held_amount="900.00")
    assert late.status_code == 200 and late.json()["status"] == "failed"
    entries = (await c.get("/v1/audit", params={"case_id": case_id}, headers=f.officer("auditor"))).json()
    kept = [e for e in entries["items"] if e["action"] == "instruction.answered_after_failure"]
    assert [(e["entity_id"], e["after"]["kept_because"]) for e in kept] == [(stop["id"], "case_closed")] * 2
    async with sessions() as s:
        stmt = sa.select(OutboxMessage.message_id).where(
            OutboxMessage.instruction_id == uuid.UUID(stop["id"])
        )
        assert list((await s.execute(stmt)).scalars()).count(f"{stop['id']}:cancelled") == 1


async def test_an_unanswered_query_is_withdrawn_with_its_reason_and_the_case_then_closes(coord, sessions):
    """A bank that never answers a query would keep the case open for good: the issuer withdraws it, saying
    why; the bank is told it is cancelled; the answer it sends after all is kept, not applied. A hold sent
    to its bank is not withdrawn (it lapses by itself, or is released), nor is anything by another
    operator."""
    c = coord.client
    op = f.officer(unit="cc-unit")
    inst, key, case_id, stop = await stop_issued(coord, sessions, op, "900.00")
    account = stop["account"]
    query = await issue(c, op, case_id, kind="query", institution_id=inst, account=account)
    assert [i for i, _, _ in _blocking(await _close(c, case_id, op))] == [stop["id"], query["id"]]

    url = f"/v1/instructions/{query['id']}/cancel"
    unsaid = await c.post(url, json={"note": "  "}, headers=op)
    assert unsaid.status_code == 422 and _fields(unsaid) == ["body.note"]
    assert (await c.post(url, json={"note": "x"}, headers=f.officer(unit="cc-unit"))).status_code == 403
    hold = await c.post(f"/v1/instructions/{stop['id']}/cancel", json={"note": "no answer"}, headers=op)
    assert hold.status_code == 409 and "lapses by itself" in hold.json()["error"]["message"]
    lapses = hold.json()["error"]["details"]["expires_at"]
    assert datetime.fromisoformat(lapses) == datetime.fromisoformat(stop["expires_at"])
    assert (await c.get(f"/v1/instructions/{query['id']}", headers=op)).json()["status"] != "cancelled"

    withdrawn = await c.post(url, json={"note": "the bank has not answered in 3 days"}, headers=op)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "cancelled"
    assert withdrawn.json()["decision_note"] == "the bank has not answered in 3 days"
    async with sessions() as s:
        stmt = sa.select(OutboxMessage.message_id).where(
            OutboxMessage.instruction_id == uuid.UUID(query["id"])
        )
        assert f"{query['id']}:cancelled" in set((await s.execute(stmt)).scalars())
    assert (await c.post(url, json={"note": "again"}, headers=op)).status_code == 409  # final

    # Only the stop-payment keeps the case open now; once it lapses the case closes.
    assert [i for i, _, _ in _blocking(await _close(c, case_id, op))] == [stop["id"]]
    await lapse_now(coord, sessions, op, stop)
    assert (await _close(c, case_id, op)).status_code == 200

    result = {"holder": {"name": "Holder"}, "balance": "10.00", "transfers": []}
    late = await respond(c, key, query["id"], "executed", query_result=result)
    assert late.status_code == 200 and late.json()["status"] == "cancelled"
    again = await respond(c, key, query["id"], "rejected", reason="sent twice by our desk")
    assert (
        again.status_code == 200 and again.json()["status"] == "cancelled"
    )  # the notice is not queued twice
    answers = (await c.get(f"/v1/instructions/{query['id']}/responses", headers=op)).json()
    assert sorted(a["outcome"] for a in answers) == ["executed", "rejected"]
    entries = (await c.get("/v1/audit", params={"case_id": case_id}, headers=f.officer("auditor"))).json()
    mine = [e for e in entries["items"] if e["entity_id"] == query["id"]]
    [withdrawal] = [e for e in mine if e["action"] == "instruction.withdrawn"]
    assert withdrawal["after"]["status"] == "cancelled"
    kept = [e["after"]["outcome"] for e in mine if e["action"] == "instruction.answered_after_withdrawal"]
    assert sorted(kept) == ["executed", "rejected"]
    assert await _stored_status(sessions, case_id) == ("closed", "confirmed_fraud")


async def test_a_withdrawn_instruction_waiting_for_its_webhook_is_not_sent_and_a_release_is_a_supervisors(
    coord, sessions
):
    """A bank whose webhook is down: the query waits for its next attempt; withdrawn, it is not sent any more,
    only its notice. An approved release is withdrawn by a supervisor, not by the operator alone."""
    c = coord.client
    op, sup = f.officer(unit="cc-unit"), f.officer("supervisor", unit="cc-unit")
    inst, _, _ = await bank(sessions, kafka=False, webhook_url="http://127.0.0.1:9/hook")
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "500.00"))
    query = await issue(c, op, case_id, kind="query", institution_id=inst, account=account)

    async def tried() -> bool:
        async with sessions() as s:
            stmt = sa.select(OutboxMessage.attempts).where(OutboxMessage.message_id == query["id"])
            return bool((await s.execute(stmt)).scalar_one() > 0)

    await eventually(tried, timeout_s=10)  # the relay's first attempt failed: it waits for the next
    withdrawn = await c.post(
        f"/v1/instructions/{query['id']}/cancel", json={"note": "wrong bank"}, headers=op
    )
    assert withdrawn.status_code == 200, withdrawn.text
    async with sessions() as s:
        stmt = sa.select(
            OutboxMessage.message_id, OutboxMessage.sent_at, OutboxMessage.dead_at, OutboxMessage.last_error
        ).where(OutboxMessage.instruction_id == uuid.UUID(query["id"]))
        rows = {r.message_id: r for r in (await s.execute(stmt)).all()}
    first = rows[query["id"]]
    assert (
        first.sent_at is None
        and first.dead_at is not None
        and first.last_error == "withdrawn before delivery"
    )
    assert rows[f"{query['id']}:cancelled"].dead_at is None  # the notice is to be sent

    key, stop_case, stop = await stop_in_force(coord, sessions, op)
    release = await issue(c, op, stop_case, kind="release", parent_id=stop["id"], document_number="REL-9")
    assert (await c.post(f"/v1/instructions/{release['id']}/approve", headers=sup)).status_code == 200
    url = f"/v1/instructions/{release['id']}/cancel"
    by_operator = await c.post(url, json={"note": "no answer"}, headers=op)
    assert by_operator.status_code == 403 and "supervisor" in by_operator.json()["error"]["message"]
    by_supervisor = await c.post(url, json={"note": "no answer"}, headers=sup)
    assert by_supervisor.status_code == 200 and by_supervisor.json()["status"] == "cancelled"


async def test_a_close_waits_for_an_issue_in_progress_and_is_refused_for_its_instruction(
    coord, sessions, infra
):
    c = coord.client
    op = f.officer(unit="cc-unit")
    inst, _, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "800.00"))
    spec = InstructionCreate(
        kind="stop_payment", institution_id=inst, account=account, amount=Decimal("800.00")
    )
    ctx = instructions.Context(
        policy=coord.settings,
        topic_prefix=infra.common.topic_prefix,
        max_ahead_s=infra.common.event_max_ahead_s,
    )
    async with unit_of_work(sessions) as issuing:  # an issue, not committed yet: it holds the case's row
        case = await repository.get(issuing, uuid.UUID(case_id), lock="update")
        assert case is not None
        officer = Officer(subject="officer-li", unit="cc-unit", role="operator")
        stop = await instructions.issue(issuing, case=case, officer=officer, spec=spec, ctx=ctx)
        closing = asyncio.create_task(_close(c, case_id, op))
        await eventually(lambda: waiting_on_a_lock(sessions), timeout_s=10)  # the close waits for it
    [(blocker, kind, status)] = _blocking(await closing)
    assert (blocker, kind) == (str(stop.id), "stop_payment") and status in ("issued", "delivered")
    assert await _stored_status(sessions, case_id) == ("open", None)


async def test_a_locked_read_sees_the_case_as_it_is_now_not_as_the_session_read_it(coord, sessions):
    c = coord.client
    op = f.officer(unit="cc-unit")
    inst, _, _ = await bank(sessions)
    case_id = await open_case(c, op, (inst, f.account("MULE"), "800.00"))
    async with sessions() as s:
        before = await repository.get(s, uuid.UUID(case_id))
        assert before is not None and before.status == "open"
        assert (await _close(c, case_id, op)).status_code == 200  # another transaction closes it
        locked = await repository.get(s, uuid.UUID(case_id), lock="share")  # as an approval reads it
        assert locked is before and locked.status == "closed"


async def test_a_late_answer_to_a_failed_stop_waits_for_the_same_stop_being_issued_again(
    coord, sessions, infra
):
    """The bank executes a stop-payment Stopline had given up on while an officer issues it again: the
    answer waits for the issue, sees it and is kept, not applied (no second hold, and no 500)."""
    c = coord.client
    op = f.officer(unit="cc-unit")
    inst, key, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "800.00"))
    first = await issue(
        c, op, case_id, kind="stop_payment", institution_id=inst, account=account, amount="800.00"
    )
    async with unit_of_work(sessions) as s:  # given up, as the relay does after its last attempt
        await s.execute(
            sa.update(Instruction).where(Instruction.id == uuid.UUID(first["id"])).values(status="failed")
        )
    spec = InstructionCreate(
        kind="stop_payment", institution_id=inst, account=account, amount=Decimal("800.00")
    )
    ctx = instructions.Context(
        policy=coord.settings,
        topic_prefix=infra.common.topic_prefix,
        max_ahead_s=infra.common.event_max_ahead_s,
    )
    async with unit_of_work(sessions) as issuing:  # the same stop issued again, not committed yet
        case = await repository.get(issuing, uuid.UUID(case_id), lock="share")
        assert case is not None
        officer = Officer(subject="officer-li", unit="cc-unit", role="operator")
        again = await instructions.issue(issuing, case=case, officer=officer, spec=spec, ctx=ctx)
        answering = asyncio.create_task(respond(c, key, first["id"], "executed", held_amount="800.00"))
        await eventually(lambda: waiting_on_a_lock(sessions), timeout_s=10)  # the answer waits for it
    answered = await answering
    assert answered.status_code == 200 and answered.json()["status"] == "failed", answered.text
    async with sessions() as s:
        held = await s.get(Instruction, again.id)
        assert held is not None and held.status in ("issued", "delivered")


async def test_the_victims_own_accounts_are_not_told_to_the_blocklist(coord, sessions):
    """A query on the victim's account (where did the money go?) makes it a root of the money-flow tree,
    and a linked alert about the victim's payment names the account it was paid from: neither received
    the fraud's money. The case closed as confirmed fraud tells the blocklist of the mule only."""
    from services.coordination.alerts import service as alerts
    from streams.schemas.alerts import Subject

    c = coord.client
    op = f.officer(unit="victim-acc-unit")
    vbank, vkey, _ = await bank(sessions)
    mbank, _, _ = await bank(sessions)
    victim_acc, other_victim_acc, mule = f.account("VIC"), f.account("VIC2"), f.account("MULE")
    mule2 = f.account("MULE2")
    body = {
        "case_number": f.unique("VICACC"),
        "title": "t",
        "source": "report",
        "victim": {"phone": f.phone(), "institution_id": vbank, "account": victim_acc},
        "amount_lost": "5000.00",
        "lost_at": f.iso(f.minutes_ago(30)),
    }
    r = await c.post("/v1/cases", json=body, headers=op)
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    # The victim also paid from another account of theirs: the scorer's alert names it as the payer.
    alert = f.alert(
        subject=Subject(
            phone=f.phone(),
            account=other_victim_acc,
            institution=vbank,
            payee_account=mule,
            payee_institution=mbank,
        ),
        amount_at_risk="800.00",
    )
    # And the mule's onward payment alerted too (the scorer scores any payer): the mule paid in an alert
    # of the case, but received its money, so it is no victim.
    onward = f.alert(
        subject=Subject(
            phone=f.phone(), account=mule, institution=mbank, payee_account=mule2, payee_institution=mbank
        ),
        amount_at_risk="790.00",
    )
    async with unit_of_work(sessions) as s:
        await alerts.store(s, alerts=[alert, onward])
    for linked_alert in (alert, onward):
        linked = await c.post(
            f"/v1/cases/{case_id}/alerts", json={"alert_id": str(linked_alert.alert_id)}, headers=op
        )
        assert linked.status_code == 204, linked.text
    q = await issue(c, op, case_id, kind="query", institution_id=vbank, account=victim_acc)
    result = {
        "holder": {"name": "Victim"},
        "balance": "10.00",
        "transfers": [
            {
                "transfer_id": "t1",
                "to_institution": mbank,
                "to_account": mule,
                "amount": "5000.00",
                "at": f.iso(f.minutes_ago(29)),
            }
        ],
    }
    assert (await respond(c, vkey, q["id"], "executed", query_result=result)).status_code == 200
    closed = await c.patch(
        f"/v1/cases/{case_id}", json={"status": "closed", "outcome": "confirmed_fraud"}, headers=op
    )
    assert closed.status_code == 200, closed.text
    async with sessions() as s:
        rows = (
            (await s.execute(sa.select(OutboxMessage).where(OutboxMessage.topic.like("%fraud-receivers%"))))
            .scalars()
            .all()
        )
    told = {(m.payload["institution"], m.payload["account"]) for m in rows if m.payload["case_id"] == case_id}
    assert told == {(mbank, mule), (mbank, mule2)}
