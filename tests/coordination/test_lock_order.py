"""Transactions that lock a case and its instructions, or its money tree, take the case first
(cases.repository): a late answer to a failed hold never holds the hold's row while it waits for the case,
which an approval or an issue of a follow-up of that hold holds while it waits for the hold; a query's
answer never holds the tree while it waits for the case, which a citizen's report holds while it waits for
the tree, nor the query, which a relay's batch of it and a hold waits for holding the hold that an approval
holding the case waits for; a relay marking a message sent takes its instruction before the message, as
a withdrawal or another relay giving the message up does; relays giving up batches lock their instructions
in one order, and a relay's batch takes a follow-up before its hold, as an answer to the follow-up does,
and a stop-payment and freeze of an account by id, as an answer to one of them does (each a deadlock,
which PostgreSQL ends by aborting one: a 503 for the bank or the officer, a failed notifier or relay
batch)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination import public
from services.coordination.alerts import service as alerts
from services.coordination.cases import repository as cases
from services.coordination.cases import service as cases_service
from services.coordination.delivery.models import OutboxMessage
from services.coordination.delivery.relay import Relay, mark_delivered
from services.coordination.instructions import answers
from services.coordination.instructions import repository as instructions_repo
from services.coordination.instructions import service as instructions
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.schemas import InstructionCreate
from services.coordination.settings import CoordinationSettings
from services.kit.auth import Officer
from services.kit.db import unit_of_work
from services.kit.errors import Conflict
from streams.schemas.alerts import Subject
from streams.schemas.instructions import Response
from tests import factories as f
from tests.coordination.conftest import FAST, bank, case_body, issue, open_case, respond, stop_issued
from tests.kafka_tools import eventually
from tests.locks import backend, blocked_by, waiting_behind

pytestmark = pytest.mark.integration

UNIT = "lock-unit"
# Acts on the failed stop and its extension in the test's own transaction, which holds the case's share lock.
Act = Callable[[AsyncSession, uuid.UUID, dict[str, Any], instructions.Context], Awaitable[Any]]


async def _approve(session: AsyncSession, case_id: uuid.UUID, extension: dict[str, Any], ctx: Any) -> Any:
    supervisor = Officer(subject="supervisor-wu", unit=UNIT, role="supervisor")
    return await instructions.approve(
        session, instruction_id=uuid.UUID(extension["id"]), officer=supervisor, ctx=ctx
    )


async def _extend_again(
    session: AsyncSession, case_id: uuid.UUID, extension: dict[str, Any], ctx: Any
) -> Any:
    case = await cases.get(session, case_id, lock="share")
    assert case is not None
    spec = InstructionCreate(
        kind="extend", parent_id=uuid.UUID(extension["parent_id"]), document_number="EXT-2"
    )
    officer = Officer(subject="officer-li", unit=UNIT, role="operator")
    return await instructions.issue(session, case=case, officer=officer, spec=spec, ctx=ctx)


@pytest.mark.parametrize("act", [_approve, _extend_again], ids=["approval", "issue"])
async def test_a_late_answer_to_a_failed_hold_crossing_an_approval_or_issue_of_its_extension(
    coord, sessions, infra, act: Act
):
    """Stopline gave up delivering a stop-payment that has an extension awaiting approval; the bank executed
    it after all and its answer comes as a supervisor approves the extension (or an officer asks for another).
    The officer's transaction has the case's share lock, as an approval or an issue takes it first, as the
    answer starts. The officer's act, first, finds the hold failed (409, not a 503); the bank's answer then
    puts the hold in force (200, not a 503), and the approval asked again goes through."""
    c = coord.client
    op, sup = f.officer(unit=UNIT), f.officer("supervisor", unit=UNIT)
    _, key, case_id, stop = await stop_issued(coord, sessions, op, "1500.00")
    extension = await issue(c, op, case_id, kind="extend", parent_id=stop["id"], document_number="EXT-1")
    async with unit_of_work(sessions) as s:  # given up, as the relay does after its last attempt
        await s.execute(
            sa.update(Instruction).where(Instruction.id == uuid.UUID(stop["id"])).values(status="failed")
        )
    ctx = instructions.Context(coord.settings, infra.common.topic_prefix, infra.common.event_max_ahead_s)

    with pytest.raises(Conflict) as refused:
        async with unit_of_work(sessions) as acting:
            pid = await backend(acting)
            await cases.get(acting, uuid.UUID(case_id), lock="share")  # the officer's first lock
            answering = asyncio.create_task(respond(c, key, stop["id"], "executed", held_amount="1500.00"))
            await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)  # the answer waits for the case
            await act(acting, uuid.UUID(case_id), extension, ctx)
    assert refused.value.details in ({"parent_status": "failed"}, {"current_status": "failed"})
    answered = await answering
    assert answered.status_code == 200, answered.text  # (a deadlock would be a 503, for the bank to retry)
    assert answered.json()["status"] == "executed"

    approved = await c.post(f"/v1/instructions/{extension['id']}/approve", headers=sup)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] in ("issued", "delivered")
    held = (await c.get(f"/v1/instructions/{stop['id']}", headers=op)).json()
    assert (held["status"], Decimal(held["held_amount"])) == ("executed", Decimal("1500.00"))


async def _two_behind(sessions: Any, pid: int) -> bool:
    return await waiting_behind(sessions, pid) == 2


@pytest.mark.usefixtures("relays_paused")  # the test is the relay: the stop stays issued until it fails it
async def test_a_late_answer_crossing_the_relay_giving_its_hold_up_and_an_approval_of_its_extension(
    coord, sessions, infra
):
    """The relay gives a stop-payment up (its last attempt timed out) as the bank, which had it after all,
    answers it executed and a supervisor approves its extension. The answer read the stop issued and waits
    for the relay's lock on it; the approval holds the case's share lock and waits for the stop behind it.
    The answer, finding the stop failed once it has it, lets it go and waits for the case: the approval finds
    the hold failed (409, not a 503), then the answer puts it in force (200, not a 503)."""
    c = coord.client
    op, sup = f.officer(unit=UNIT), f.officer("supervisor", unit=UNIT)
    _, key, case_id, stop = await stop_issued(coord, sessions, op, "1500.00")
    extension = await issue(c, op, case_id, kind="extend", parent_id=stop["id"], document_number="EXT-1")

    async with unit_of_work(sessions) as relaying:
        pid = await backend(relaying)
        await instructions.lock(relaying, [uuid.UUID(stop["id"])])  # the relay's first lock, giving it up
        answering = asyncio.create_task(respond(c, key, stop["id"], "executed", held_amount="1500.00"))
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)
        approving = asyncio.create_task(c.post(f"/v1/instructions/{extension['id']}/approve", headers=sup))
        await eventually(lambda: _two_behind(sessions, pid), timeout_s=10)
        await instructions.delivery_failed(
            relaying,
            instruction_id=uuid.UUID(stop["id"]),
            error="Timeout",
            topic_prefix=infra.common.topic_prefix,
        )
    approved, answered = await approving, await answering
    assert approved.status_code == 409, approved.text  # (a deadlock would be a 503 for one of them)
    assert approved.json()["error"]["details"] == {"parent_status": "failed"}
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "executed"

    again = await c.post(f"/v1/instructions/{extension['id']}/approve", headers=sup)
    assert again.status_code == 200, again.text


async def _claimed(sessions: Any, instruction_ids: list[uuid.UUID]) -> list[OutboxMessage]:
    """The instructions' messages, claimed as a relay claims them (`delivery.repository.claim`: their
    attempt counted, the rows as they were before it), for the test's relays to give up."""
    async with unit_of_work(sessions) as s:
        theirs = OutboxMessage.message_id.in_([str(i) for i in instruction_ids])
        rows = list((await s.execute(sa.select(OutboxMessage).where(theirs))).scalars())
        counted = sa.update(OutboxMessage).where(theirs).values(attempts=OutboxMessage.attempts + 1)
        await s.execute(counted.execution_options(synchronize_session=False))
    return rows


@pytest.mark.usefixtures("relays_paused")  # the test's relays give the messages up, nobody sends them
async def test_two_relays_giving_up_two_instructions_copies_in_opposite_orders(infra, coord, sessions):
    """A bank takes instructions on Kafka and by webhook; two stop-payments are issued to it, each queued
    twice. One relay gives up their Kafka copies (the first, then the second), another relay their webhook
    copies (the second, then the first), at once. Both give-ups go through (not one aborted as a deadlock,
    its batch failed and tried again): all four copies are dead and both stop-payments failed."""
    c, op = coord.client, f.officer(unit=UNIT)
    inst, _, _ = await bank(sessions, webhook_url="http://127.0.0.1:9/hook")
    accounts = [f.account("MULE") for _ in range(2)]
    case_id = await open_case(c, op, *[(inst, a, "1000.00") for a in accounts])
    spec = {"kind": "stop_payment", "institution_id": inst, "amount": "1000.00"}
    stops = [uuid.UUID((await issue(c, op, case_id, account=a, **spec))["id"]) for a in accounts]
    copies = {(r.channel, r.instruction_id): r for r in await _claimed(sessions, stops)}
    by_kafka = [copies["kafka", i] for i in stops]
    by_webhook = [copies["webhook", i] for i in reversed(stops)]
    settings = CoordinationSettings(**FAST)
    kafka_relay, webhook_relay = (Relay(infra.common, settings, sessions) for _ in range(2))

    # The barrier: the first copy each relay gives up is held until both relays wait (one locking an
    # instruction at a time has its first locked by then; else one waits for the other's instructions).
    async with unit_of_work(sessions) as holding:
        pid = await backend(holding)
        first = [by_kafka[0].id, by_webhook[0].id]
        await holding.execute(
            sa.select(OutboxMessage.id).where(OutboxMessage.id.in_(first)).with_for_update()
        )
        giving_up = [
            asyncio.create_task(kafka_relay._give_up(by_kafka, error="its topic was refused")),
            asyncio.create_task(webhook_relay._give_up(by_webhook, error="HTTP 410")),
        ]
        await eventually(lambda: _two_behind(sessions, pid), timeout_s=10)
    await asyncio.gather(*giving_up)  # (a deadlock: PostgreSQL aborts one, which raises)

    async with sessions() as s:
        given_up = await s.execute(
            sa.select(OutboxMessage).where(OutboxMessage.id.in_(r.id for r in copies.values()))
        )
        assert {(r.channel, r.instruction_id, r.dead_at is not None) for r in given_up.scalars()} == {
            (channel, i, True) for channel in ("kafka", "webhook") for i in stops
        }
    for stop in stops:
        failed = (await c.get(f"/v1/instructions/{stop}", headers=op)).json()
        assert failed["status"] == "failed"


async def _withdraw(acting: AsyncSession, query: uuid.UUID, ctx: instructions.Context, relay: Relay) -> None:
    supervisor = Officer(subject="supervisor-wu", unit=UNIT, role="supervisor")
    await instructions.cancel(acting, instruction_id=query, officer=supervisor, note="sent in error", ctx=ctx)


async def _give_up_again(
    acting: AsyncSession, query: uuid.UUID, ctx: instructions.Context, relay: Relay
) -> None:
    (copy,) = [r for r in await _claimed(relay.sessions, [query]) if r.channel == "webhook"]  # its claim
    assert await relay._dead(acting, copy, at=datetime.now(UTC), error="HTTP 503")


@pytest.mark.usefixtures("relays_paused")  # the test's relays take the messages, nobody else
@pytest.mark.parametrize(
    ("act", "then"),
    [(_withdraw, "cancelled"), (_give_up_again, "delivered")],
    ids=["withdrawal", "another_relay_giving_up"],
)
async def test_a_relay_marking_a_webhook_sent_crossing_a_withdrawal_or_giving_up_of_its_instruction(
    coord, sessions, infra, act: Callable[..., Coroutine[Any, Any, None]], then: str
):
    """A bank takes a query on Kafka and by webhook; the relay posted the webhook copy and marks it sent as a
    supervisor withdraws the query (which drops its unsent copies), or as another relay, which took the copy
    over once the first relay's lease lapsed, gives its own attempt up. Those hold the query, as they take
    it first, as the relay starts: the relay waits for them holding nothing (not the copy, that they then
    update: a deadlock, one of them aborted), then marks the copy sent. The query is withdrawn (its Kafka copy
    not sent), or delivered."""
    c, op = coord.client, f.officer(unit=UNIT)
    inst, _, _ = await bank(sessions, webhook_url="http://127.0.0.1:9/hook")
    case_id = await open_case(c, op)
    spec = {"kind": "query", "institution_id": inst, "account": f.account("MULE")}
    query = uuid.UUID((await issue(c, op, case_id, **spec))["id"])
    (posted,) = [r for r in await _claimed(sessions, [query]) if r.channel == "webhook"]
    ctx = instructions.Context(coord.settings, infra.common.topic_prefix, infra.common.event_max_ahead_s)

    async with unit_of_work(sessions) as acting:
        pid = await backend(acting)
        await instructions_repo.get(acting, query, for_update=True)  # the act's first lock
        marking = asyncio.create_task(_sent(sessions, posted))
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)  # the relay waits for it
        await act(acting, query, ctx, Relay(infra.common, CoordinationSettings(**FAST), sessions))
    await marking  # (a deadlock: PostgreSQL aborts the act or the relay, which raises)

    async with sessions() as s:
        copies = await s.execute(sa.select(OutboxMessage).where(OutboxMessage.message_id == str(query)))
        sent = {r.channel: r.sent_at is not None for r in copies.scalars()}
    assert sent == {"webhook": True, "kafka": False}
    answered = (await c.get(f"/v1/instructions/{query}", headers=op)).json()
    assert answered["status"] == then


async def _sent(sessions: Any, row: OutboxMessage) -> None:
    async with unit_of_work(sessions) as session:  # as the relay does with a post that landed
        await mark_delivered(session, [row], at=datetime.now(UTC))


async def _extension_above_its_hold(
    coord: Any, sessions: Any, op: dict[str, str]
) -> tuple[str, uuid.UUID, uuid.UUID]:
    """A bank, a stop-payment issued to it and an extension of it, approved and issued: (bank, stop,
    extension). Ids are random: made again until the extension's is above the stop's, so that plain id
    order would take the hold first."""
    sup = f.officer("supervisor", unit=UNIT)
    while True:
        inst, _, case_id, stop = await stop_issued(coord, sessions, op, "1500.00")
        spec = {"kind": "extend", "parent_id": stop["id"], "document_number": "EXT-1"}
        extension = await issue(coord.client, op, case_id, **spec)
        if uuid.UUID(extension["id"]) > uuid.UUID(stop["id"]):
            break
    approved = await coord.client.post(f"/v1/instructions/{extension['id']}/approve", headers=sup)
    assert approved.json()["status"] == "issued", approved.text
    return inst, uuid.UUID(stop["id"]), uuid.UUID(extension["id"])


async def _mark_delivered(infra: Any, sessions: Any, ids: list[uuid.UUID]) -> None:
    async with unit_of_work(sessions) as session:  # as the Kafka relay does for a batch it sent
        await instructions.mark_delivered(session, instruction_ids=ids, at=datetime.now(UTC))


async def _give_up(infra: Any, sessions: Any, ids: list[uuid.UUID]) -> None:
    relay = Relay(infra.common, CoordinationSettings(**FAST), sessions)
    await relay._give_up(await _claimed(sessions, ids), error="its topic was refused")


@pytest.mark.usefixtures("relays_paused")  # the test's relay takes the batch, nobody else
@pytest.mark.parametrize(
    ("relay", "hold_then"),
    [(_mark_delivered, "delivered"), (_give_up, "failed")],
    ids=["delivered", "given_up"],
)
async def test_an_extensions_answer_crossing_a_relay_batch_of_it_and_its_hold(
    coord, sessions, infra, relay: Callable[..., Coroutine[Any, Any, None]], hold_then: str
):
    """A stop-payment and its extension are in one relay batch (sent, or given up) as the bank answers the
    extension executed. The answer holds the extension and then takes the stop, to renew it; the relay takes
    the batch's instructions all at once. The answer has the extension locked, as it takes it first, as the
    relay starts: the relay waits for it holding nothing (not the stop, first by id, that the answer waits
    for: a deadlock, one of them aborted), then has both once the answer is in. The stop is renewed and then
    delivered (or failed); the extension stays executed."""
    op = f.officer(unit=UNIT)
    inst, stop, extension = await _extension_above_its_hold(coord, sessions, op)
    ctx = instructions.Context(coord.settings, infra.common.topic_prefix, infra.common.event_max_ahead_s)
    executed = Response(
        response_id=uuid.uuid4(),
        instruction_id=extension,
        institution_id=inst,
        outcome="executed",
        responded_at=datetime.now(UTC),
    )

    async with unit_of_work(sessions) as answering:
        pid = await backend(answering)
        await instructions_repo.get(answering, extension, for_update=True)  # the answer's first lock
        relaying = asyncio.create_task(relay(infra, sessions, [stop, extension]))
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)  # the relay waits for it
        await answers.answer(answering, response=executed, channel="api", ctx=ctx)
    await relaying  # (a deadlock: PostgreSQL aborts the answer or the relay, which raises)

    async with sessions() as s:
        rows = {
            r.id: r
            for r in (await s.execute(sa.select(Instruction).where(Instruction.parent_id == stop))).scalars()
        }
        held = await s.get(Instruction, stop)
    assert held is not None
    assert (rows[extension].status, rows[extension].delivered_at is not None) == (
        "executed",
        hold_then == "delivered",
    )
    assert (held.status, held.renewals) == (hold_then, 1)


async def _one_hold_in_force_below_the_other(
    coord: Any, sessions: Any, first: str
) -> tuple[str, dict[str, str], str, uuid.UUID, uuid.UUID]:
    """A bank, a case's stop-payment and freeze of one account of it (the freeze approved), and `first` of
    them executed: (bank, its key, case, the hold in force, the other, issued). Ids are random: made again
    until the one in force is below the other, so that a relay's batch takes it first."""
    c, op, sup = coord.client, f.officer(unit=UNIT), f.officer("supervisor", unit=UNIT)
    while True:
        inst, key, case_id, stop = await stop_issued(coord, sessions, op, "900.00")
        spec = {"institution_id": inst, "account": stop["account"], "amount": "900.00"}
        freeze = await issue(c, op, case_id, kind="freeze", document_number="D-F", **spec)
        held, other = (stop, freeze) if first == "stop_payment" else (freeze, stop)
        if uuid.UUID(held["id"]) < uuid.UUID(other["id"]):
            break
    assert (await c.post(f"/v1/instructions/{freeze['id']}/approve", headers=sup)).status_code == 200
    executed = await respond(c, key, held["id"], "executed", held_amount="900.00")
    assert executed.status_code == 200, executed.text
    return inst, key, case_id, uuid.UUID(held["id"]), uuid.UUID(other["id"])


@pytest.mark.usefixtures("relays_paused")  # the test's relay takes the batch, nobody else
@pytest.mark.parametrize("first", ["stop_payment", "freeze"])
async def test_a_holds_answer_crossing_a_relay_batch_of_it_and_the_other_hold_of_its_account(
    coord, sessions, infra, first: str
):
    """A case's stop-payment and freeze of one account are in one relay batch as the bank answers one of
    them executed, the other already in force (its answer overtook the relay). The answer converts the
    stop-payment, so it locks both holds, as the relay's batch does: in the same order (the one in force
    first, by id), not its own first, which would hold it while it waits for the other that the relay holds
    while it waits for it (a deadlock, one of them aborted). A transaction holding the one in force keeps
    the relay and the answer waiting until both do. Both go through: the stop-payment is converted and the
    freeze holds the money, and both are marked delivered."""
    c, op = coord.client, f.officer(unit=UNIT)
    _, key, case_id, held, answered_one = await _one_hold_in_force_below_the_other(coord, sessions, first)

    async with unit_of_work(sessions) as holding:
        pid = await backend(holding)
        await instructions_repo.get(holding, held, for_update=True)
        relaying = asyncio.create_task(_mark_delivered(infra, sessions, [held, answered_one]))
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)  # the relay waits for it
        answering = asyncio.create_task(respond(c, key, str(answered_one), "executed", held_amount="900.00"))
        await eventually(lambda: _two_behind(sessions, pid), timeout_s=10)
    answered = await answering
    assert answered.status_code == 200, answered.text  # (a deadlock: a 503, or the relay's batch raises)
    await relaying

    async with sessions() as s:
        both = sa.select(Instruction).where(Instruction.id.in_([held, answered_one]))
        got = {r.kind: (r.status, r.delivered_at is not None) for r in (await s.execute(both)).scalars()}
    assert got == {"stop_payment": ("converted", True), "freeze": ("executed", True)}
    flow = (await c.get(f"/v1/cases/{case_id}/flow", headers=op)).json()
    assert (flow["totals"]["stopped"], flow["totals"]["frozen"]) == ("0.00", "900.00")


def _report(
    warning_id: uuid.UUID, bank_id: str, *paid: tuple[str, str], source: public.ReportSource
) -> public.CitizenReport:
    """The person's word (or a further payment) on warning `warning_id`: paid `paid` (account, amount), from
    the warning's one account of the person's."""
    payees = [public.Payee(bank_id, a, Decimal(amount), datetime.now(UTC)) for a, amount in paid]
    return public.CitizenReport(
        warning_id=warning_id,
        alert_ids=[],
        phone=f.phone(),
        institution=bank_id,
        account=f"VICTIM{warning_id.hex[:12].upper()}",
        payees=payees,
        amount_at_risk=sum((p.amount for p in payees), Decimal(0)),
        event_time=datetime.now(UTC),
        source=source,
        word="answer",
    )


async def test_a_query_answer_crossing_a_citizens_report_on_its_case(coord, sessions):
    """A warned person said they were defrauded (their case has a stop drafted) and the officer queried a
    further account of the case; the bank answers the query as a further payment of the person's reaches the
    case. The report has the case locked for update, as it takes it first, as the answer starts.
    The answer waits for the report, which drafts its stop and commits; then the answer applies (200, not a
    503), and the tree has both."""
    c, op = coord.client, f.officer(unit=UNIT)
    inst, key, _ = await bank(sessions)
    mule, further, queried, hop = (f.account("MULE") for _ in range(4))
    warning = uuid.uuid4()
    async with unit_of_work(sessions) as s:
        said = _report(warning, inst, (mule, "3000.00"), source="answer")
        case_id = await public.citizen_defrauded(s, report=said, on_behalf_of="citizen", unit=UNIT)
    assert case_id is not None
    query = await issue(c, op, str(case_id), kind="query", institution_id=inst, account=queried)
    at = f.iso(f.now())
    transfer = {
        "transfer_id": "0001",
        "to_institution": inst,
        "to_account": hop,
        "amount": "900.00",
        "at": at,
    }
    result = {"holder": {"name": "Zhang San"}, "balance": "0.00", "transfers": [transfer]}

    async with unit_of_work(sessions) as reporting:
        pid = await backend(reporting)
        await cases.get(reporting, case_id, lock="update")  # the report's first lock
        answering = asyncio.create_task(respond(c, key, query["id"], "executed", query_result=result))
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)  # the answer waits for the case
        paid = _report(warning, inst, (mule, "3000.00"), (further, "2000.00"), source="payment")
        reported = await public.citizen_defrauded(reporting, report=paid, on_behalf_of="citizen", unit=UNIT)
    assert reported == case_id
    answered = await answering
    assert answered.status_code == 200, answered.text  # (a deadlock would be a 503, for the bank to retry)
    assert answered.json()["status"] == "executed"

    flow = (await c.get(f"/v1/cases/{case_id}/flow", headers=op)).json()
    received = {n["account"]: Decimal(n["received"]) for n in flow["nodes"]}
    assert received == {
        mule: Decimal("3000.00"),
        further: Decimal("2000.00"),
        queried: Decimal("0"),
        hop: Decimal("900.00"),
    }
    drafts = (await c.get(f"/v1/cases/{case_id}/proposals", headers=op)).json()
    assert {p["account"]: Decimal(p["amount"]) for p in drafts if p["depth"] == 0} == {
        mule: Decimal("3000.00"),
        further: Decimal("2000.00"),
    }


async def _victims_query_above_a_stop(
    coord: Any, sessions: Any, op: dict[str, str]
) -> tuple[dict[str, str], str, dict[str, Any], dict[str, Any], uuid.UUID]:
    """A bank's key, a case whose victim banks with it, a stop-payment of the case, an extension of the stop
    awaiting approval, and a query of the victim's account: (key, case, stop, extension, query). Ids are
    random: queried again until the query's is above the stop's, so that a relay's batch of both takes the
    stop first."""
    c = coord.client
    inst, key, _ = await bank(sessions)
    body = case_body((inst, f.account("MULE"), "1500.00"))
    body["victim"]["institution_id"] = inst  # the victim's account: the query's answer grows the loss
    opened = await c.post("/v1/cases", json=body, headers=op)
    assert opened.status_code == 201, opened.text
    case_id, victim = opened.json()["id"], body["victim"]["account"]
    mule = body["destinations"][0]["account"]
    spec = {"kind": "stop_payment", "institution_id": inst, "account": mule, "amount": "1500.00"}
    stop = await issue(c, op, case_id, **spec)
    extension = await issue(c, op, case_id, kind="extend", parent_id=stop["id"], document_number="EXT-1")
    query = uuid.UUID(int=0)
    while query < uuid.UUID(stop["id"]):
        query = uuid.UUID(
            (await issue(c, op, case_id, kind="query", institution_id=inst, account=victim))["id"]
        )
    return key, case_id, stop, extension, query


async def _settled_or_two_behind(sessions: Any, pid: int, task: asyncio.Task[Any]) -> bool:
    return task.done() or await waiting_behind(sessions, pid) == 2


@pytest.mark.usefixtures("relays_paused")  # the test's relay takes the batch, nobody else
async def test_a_victims_query_answer_crossing_a_relay_batch_and_an_approval_on_its_case(
    coord, sessions, infra
):
    """The bank answers a query of the victim's account (its transfers grow the case's loss, so the answer
    locks the case for update) as a relay marks delivered a batch of the query and a stop-payment of the
    case, and a supervisor approves the stop's extension. The approval has the case's share lock, as it takes
    it first, as the answer starts: the answer waits for it holding nothing (not the query, that the relay
    then waits for holding the stop, that the approval then waits for: a deadlock, one of them aborted). The
    relay marks both delivered, the extension is approved, then the answer applies (200, not a 503)."""
    c, op = coord.client, f.officer(unit=UNIT)
    key, case_id, stop, extension, query = await _victims_query_above_a_stop(coord, sessions, op)
    ctx = instructions.Context(coord.settings, infra.common.topic_prefix, infra.common.event_max_ahead_s)
    paid = {"transfer_id": "0001", "to_institution": stop["institution_id"], "to_account": stop["account"]}
    result = {
        "holder": {"name": "Victim"},
        "balance": "0.00",
        "transfers": [paid | {"amount": "1500.00", "at": f.iso(f.minutes_ago(25))}],
    }

    async with unit_of_work(sessions) as approving:
        pid = await backend(approving)
        await cases.get(approving, uuid.UUID(case_id), lock="share")  # the approval's first lock
        answering = asyncio.create_task(respond(c, key, str(query), "executed", query_result=result))
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)  # the answer waits for the case
        relaying = asyncio.create_task(_mark_delivered(infra, sessions, [uuid.UUID(stop["id"]), query]))
        await eventually(lambda: _settled_or_two_behind(sessions, pid, relaying), timeout_s=10)
        approved = await _approve(approving, uuid.UUID(case_id), extension, ctx)
    assert approved.status == "issued"
    await relaying  # (a deadlock: PostgreSQL aborts the approval, the relay or the answer)
    answered = await answering
    assert answered.status_code == 200, answered.text  # (or a 503, for the bank to retry)
    assert answered.json()["status"] == "executed"

    async with sessions() as s:
        both = sa.select(Instruction).where(Instruction.id.in_([uuid.UUID(stop["id"]), query]))
        got = {r.kind: (r.status, r.delivered_at is not None) for r in (await s.execute(both)).scalars()}
    assert got == {"stop_payment": ("delivered", True), "query": ("executed", True)}


async def test_an_officers_issue_beside_a_query_answer_waiting_for_its_query(coord, sessions):
    """The bank answers a query of a mule's account (not a victim's: the case's loss stays) while a relay's
    batch marking the query delivered holds it, and an officer issues a stop-payment in the case meanwhile.
    The answer waits for the query holding its case for key share only (its effects take no more): the issue
    goes through while the answer still waits, not behind it (as long as the relay's batch, or a bank's
    largest answer, takes: seconds, a 503 for the officer); then the answer applies."""
    c, op = coord.client, f.officer(unit=UNIT)
    inst, key, _ = await bank(sessions)
    other, _, _ = await bank(sessions)
    mule, hop = f.account("MULE"), f.account("HOP")
    case_id = await open_case(c, op, (inst, mule, "20000.00"))
    query = await issue(c, op, case_id, kind="query", institution_id=inst, account=mule)
    paid = {"transfer_id": "0001", "to_institution": other, "to_account": hop, "amount": "9000.00"}
    result = {
        "holder": {"name": "Mule"},
        "balance": "0.00",
        "transfers": [paid | {"at": f.iso(f.minutes_ago(5))}],
    }
    stop = {"kind": "stop_payment", "institution_id": inst, "account": mule, "amount": "1500.00"}

    async with unit_of_work(sessions) as relaying:
        pid = await backend(relaying)
        await instructions_repo.get(relaying, uuid.UUID(query["id"]), for_update=True)  # the batch's lock
        answering = asyncio.create_task(respond(c, key, query["id"], "executed", query_result=result))
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)  # the answer waits for the query
        issuing = asyncio.create_task(issue(c, op, case_id, **stop))
        await eventually(lambda: _settled_or_two_behind(sessions, pid, issuing), timeout_s=10)
        assert issuing.done()  # (not waiting behind the answer)
        assert (await issuing)["kind"] == "stop_payment"
        assert not answering.done() and await blocked_by(sessions, pid)
    answered = await answering
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "executed"
    flow = (await c.get(f"/v1/cases/{case_id}/flow", headers=op)).json()
    assert {n["account"]: Decimal(n["received"]) for n in flow["nodes"]}[hop] == Decimal("9000.00")


async def test_a_query_answer_crossing_an_alert_linked_to_its_case_that_makes_the_account_a_victims(
    coord, sessions
):
    """The officer queried an account of the case; as its bank answers, another officer links to the case an
    alert about a payment from that account (another victim's: the account is a victim's own now). The
    link has the case for update, as the answer starts: the answer waits for it, then finds the account a
    victim's, and its listing grows the case's loss (the victims' payments: 20,000 reported, 40,000 listed
    from the other victim's account), as it would have had the link come first."""
    c, op = coord.client, f.officer(unit=UNIT)
    inst, key, _ = await bank(sessions)
    other, _, _ = await bank(sessions)
    mule, hop, payer = f.account("MULE"), f.account("HOP"), f.account("V")
    case_id = await open_case(c, op, (other, mule, "20000.00"))  # a loss of 50,000 stated
    query = await issue(c, op, case_id, kind="query", institution_id=inst, account=payer)
    subject = Subject(
        phone=f.phone(), institution=inst, account=payer, payee_institution=other, payee_account=mule
    )
    alert = f.alert(subject=subject, amount_at_risk="100.00")
    async with unit_of_work(sessions) as s:
        await alerts.store(s, alerts=[alert])
    paid = {"transfer_id": "0001", "to_institution": other, "to_account": hop, "amount": "40000.00"}
    result = {
        "holder": {"name": "Payer"},
        "balance": "0.00",
        "transfers": [paid | {"at": f.iso(f.minutes_ago(5))}],
    }

    async with unit_of_work(sessions) as linking:
        pid = await backend(linking)
        case = await cases.get(linking, uuid.UUID(case_id), lock="update")  # as the link's endpoint takes it
        assert case is not None
        answering = asyncio.create_task(respond(c, key, query["id"], "executed", query_result=result))
        await eventually(lambda: blocked_by(sessions, pid), timeout_s=10)  # the answer waits for the case
        officer = Officer(subject="officer-li", unit=UNIT, role="operator")
        await cases_service.link_alert(linking, case=case, alert_id=alert.alert_id, officer=officer)
    answered = await answering
    assert answered.status_code == 200, answered.text
    got = (await c.get(f"/v1/cases/{case_id}", headers=op)).json()
    assert Decimal(got["amount_lost"]) == Decimal("60000.00")


async def test_two_answers_to_queries_of_a_victims_account_crossing_an_issue_in_their_case(coord, sessions):
    """The officer queried the victim's account twice (two periods, say); both answers come as an officer
    issues an instruction in the case, which has the case's share lock as they start. Each found the account
    a victim's under the case's key share, and let it go before it waits for the case for update: holding
    it, each would wait for the other's (a deadlock, one answer a 503). Both apply once the issue is done,
    and the case's loss is the victim's payments they list beside the one reported."""
    c, op = coord.client, f.officer(unit=UNIT)
    inst, key, _ = await bank(sessions)
    body = case_body((inst, f.account("MULE"), "1500.00"), amount_lost="1500.00")
    body["victim"]["institution_id"] = inst
    opened = await c.post("/v1/cases", json=body, headers=op)
    assert opened.status_code == 201, opened.text
    case_id, victim = opened.json()["id"], body["victim"]["account"]
    queries = [await issue(c, op, case_id, kind="query", institution_id=inst, account=victim) for _ in "ab"]
    listings = [
        {
            "holder": {"name": "Victim"},
            "balance": "0.00",
            "transfers": [
                {
                    "transfer_id": n,
                    "to_institution": inst,
                    "to_account": f.account("HOP"),
                    "amount": "4000.00",
                }
                | {"at": f.iso(f.minutes_ago(20))}
            ],
        }
        for n in ("0001", "0002")
    ]

    async with unit_of_work(sessions) as issuing:
        pid = await backend(issuing)
        await cases.get(issuing, uuid.UUID(case_id), lock="share")  # the issue's first lock
        answering = [
            asyncio.create_task(respond(c, key, q["id"], "executed", query_result=r))
            for q, r in zip(queries, listings, strict=True)
        ]
        await eventually(lambda: _two_behind(sessions, pid), timeout_s=10)  # both wait for the case
    answered = [await a for a in answering]
    assert [a.status_code for a in answered] == [200, 200], [a.text for a in answered]
    got = (await c.get(f"/v1/cases/{case_id}", headers=op)).json()
    assert Decimal(got["amount_lost"]) == Decimal("9500.00")  # reported 1,500, listed 2 x 4,000
