"""The institution simulator: its books (money moves on unless held) and its answers through the real
interfaces — Kafka for one bank, a signed webhook and the API for another."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import orjson
import pytest
import uvicorn

from deploy.local.common import free_port
from services.banksim import webhook
from services.banksim.bank import SimBanks
from services.banksim.ledger import Ledger
from services.banksim.settings import BanksimSettings
from services.coordination.delivery import signing
from streams import topics
from streams.producer import Producer, Record
from streams.schemas.instructions import InstructionMessage, LegalBasis, Response
from tests import factories as f
from tests.coordination.conftest import App, bank, issue, open_case
from tests.kafka_tools import drained, eventually, on_kafka, read_topic


def _msg(kind: str, account: str, amount: str | None = None, **extra: object) -> InstructionMessage:
    now = datetime.now(UTC)
    iid = uuid.uuid4()
    return InstructionMessage(
        message_id=str(iid),
        type="instruction",
        instruction_id=iid,
        kind=kind,
        institution_id="bank-x",
        account=account,
        amount=Decimal(amount) if amount else None,
        legal_basis=LegalBasis(case_number="C-1"),
        issued_at=now,
        ack_due_at=now,
        exec_due_at=now,
        **extra,
    )


def test_money_moves_on_unless_held():
    ledger = Ledger(
        ["bank-x"],
        rng=random.Random(1),
        forward_after=timedelta(seconds=60),
        forward_share=Decimal("1"),
        max_layers=2,
    )
    t0 = datetime.now(UTC)
    ledger.credit("bank-x", "MULE0001", Decimal("1000.00"), at=t0)
    ledger.credit("bank-x", "MULE0002", Decimal("1000.00"), at=t0)
    stop = ledger.apply(_msg("stop_payment", "MULE0001", "600.00"))
    assert (stop.outcome, stop.held_amount) == ("executed", Decimal("600.00"))
    moved = ledger.move_on(t0 + timedelta(seconds=61))
    assert sorted(t.amount for t in moved) == [Decimal("400.00"), Decimal("1000.00")]  # held money stays
    answer = ledger.apply(_msg("query", "MULE0002", since=t0 - timedelta(minutes=1)))
    assert answer.query_result is not None and answer.query_result.transfers[0].amount == Decimal("1000.00")
    late = ledger.apply(_msg("stop_payment", "MULE0002", "1000.00"))
    assert late.outcome == "rejected"  # too late: the money is gone
    assert ledger.apply(_msg("stop_payment", "NOPE0000", "1.00")).outcome == "account_not_found"


@pytest.mark.integration
async def test_banks_answer_through_kafka_and_webhook(infra, coord: App, sessions):
    port = free_port()
    kafka_bank, _, _ = await bank(sessions)
    await on_kafka(infra, kafka_bank, "bank")
    hook_bank, hook_key, secret = await bank(
        sessions, kafka=False, webhook_url=f"http://127.0.0.1:{port}/webhooks/placeholder"
    )
    from services.institutions import delivery
    from services.kit.db import unit_of_work

    async with unit_of_work(sessions) as s:  # the real URL names the institution
        secret = await delivery.configure(
            s,
            institution_id=hook_bank,
            kafka=False,
            webhook_url=f"http://127.0.0.1:{port}/webhooks/{hook_bank}",
            rotate_secret=True,
        )
    assert secret
    settings = BanksimSettings(
        kafka_institutions=[kafka_bank],
        webhook_institutions=[hook_bank],
        delay_min_s=0.05,
        delay_max_s=0.1,
        reject_rate=0,
        silent_rate=0,
        learn_from_events=False,
        seed=7,
    )
    banks = SimBanks(
        infra.common,
        settings,
        api_keys={hook_bank: hook_key["Authorization"][7:]},
        webhook_secrets={hook_bank: secret},
        http=coord.client,
    )
    mule_k, mule_h = f.account("MK"), f.account("MH")
    now = datetime.now(UTC)
    banks.ledger.credit(kafka_bank, mule_k, Decimal("5000.00"), at=now)
    banks.ledger.credit(hook_bank, mule_h, Decimal("800.00"), at=now)
    server = uvicorn.Server(uvicorn.Config(webhook.app(banks), host="127.0.0.1", port=port, log_config=None))
    serving = asyncio.create_task(server.serve())
    await banks.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(r.started.wait() for r in banks.runners)), 20)
        op = f.officer()
        case_id = await open_case(
            coord.client, op, (kafka_bank, mule_k, "5000.00"), (hook_bank, mule_h, "1000.00")
        )
        by_kafka = await issue(
            coord.client,
            op,
            case_id,
            kind="stop_payment",
            institution_id=kafka_bank,
            account=mule_k,
            amount="5000.00",
        )
        by_hook = await issue(
            coord.client,
            op,
            case_id,
            kind="stop_payment",
            institution_id=hook_bank,
            account=mule_h,
            amount="1000.00",
        )

        async def answered(iid: str, status: str) -> bool:
            got = (await coord.client.get(f"/v1/instructions/{iid}", headers=op)).json()
            return bool(got["status"] == status)

        await eventually(lambda: answered(by_kafka["id"], "executed"), timeout_s=20)
        await eventually(lambda: answered(by_hook["id"], "partially_executed"), timeout_s=20)
        flow = (await coord.client.get(f"/v1/cases/{case_id}/flow", headers=op)).json()
        assert flow["totals"]["stopped"] == "5800.00"
    finally:
        await banks.stop()
        server.should_exit = True
        await serving


@pytest.mark.integration
async def test_an_instruction_read_twice_is_answered_once(infra, sessions):
    """At least once on the way in, once in effect: the bank drops a repeat by its message id."""
    inst, _, _ = await bank(sessions)
    await on_kafka(infra, inst, "bank")
    account = f.account("MULE")
    message = _msg("stop_payment", account, "700.00").model_copy(update={"institution_id": inst})
    topic = topics.name(topics.instructions_for(inst), infra.prefix)
    producer = Producer(infra.kafka, client_id="test-redelivery")
    await producer.start()
    try:
        record = Record(topic, message.model_dump_json().encode(), key=str(message.instruction_id).encode())
        await producer.send_all([record, record])  # delivered twice, as after a retry
    finally:
        await producer.stop()
    settings = BanksimSettings(
        kafka_institutions=[inst],
        webhook_institutions=[],
        delay_min_s=0.01,
        delay_max_s=0.02,
        reject_rate=0,
        silent_rate=0,
        learn_from_events=False,
    )
    banks = SimBanks(infra.common, settings, api_keys={}, webhook_secrets={})
    banks.ledger.credit(inst, account, Decimal("700.00"), at=datetime.now(UTC))
    await banks.start()
    try:
        # Barrier: the bank's consumer committed past both copies.
        await drained(infra.kafka, (f"{infra.prefix}{inst}.instructions", [topic]))
    finally:
        await banks.stop()  # waits for the answers in hand
    answers = await read_topic(infra.kafka, topics.name(topics.responses_from(inst), infra.prefix))
    mine = [
        orjson.loads(r.value)["outcome"] for r in answers if r.key == str(message.instruction_id).encode()
    ]
    assert mine == ["acknowledged", "executed"]


@pytest.mark.integration
async def test_a_refused_answer_is_counted_not_answered(infra, coord: App, sessions):
    """Coordination tells a bank of an answer it refused; the bank counts the notice once, answers
    nothing, and goes on (also through its webhook receiver)."""
    inst, _, _ = await bank(sessions)
    principal = await on_kafka(infra, inst, "bank")
    settings = BanksimSettings(
        kafka_institutions=[inst],
        webhook_institutions=[],
        reject_rate=0,
        silent_rate=0,
        learn_from_events=False,
    )
    banks = SimBanks(infra.common, settings, api_keys={}, webhook_secrets={})
    await banks.start()
    instructions = topics.name(topics.instructions_for(inst), infra.prefix)
    try:
        await asyncio.wait_for(asyncio.gather(*(r.started.wait() for r in banks.runners)), 20)
        stray = Response(
            response_id=uuid.uuid4(),
            instruction_id=uuid.uuid4(),  # no such instruction
            institution_id=inst,
            outcome="acknowledged",
            responded_at=datetime.now(UTC),
        )
        answers = topics.name(topics.responses_from(inst), infra.prefix)
        producer = Producer(principal, client_id="test-stray-answer")
        await producer.start()
        try:
            await producer.send_all([Record(answers, stray.model_dump_json().encode(), key=b"k")])
        finally:
            await producer.stop()
        await eventually(lambda: banks.refused, timeout_s=20)
        # The same notice delivered again (a copy an uncommitted reader would see): dropped by its id.
        [copy] = [r for r in await read_topic(infra.kafka, instructions) if b"answer_refused" in r.value]
        producer = Producer(infra.kafka, client_id="test-notice-again")
        await producer.start()
        try:
            await producer.send_all([Record(instructions, copy.value, key=copy.key)])
        finally:
            await producer.stop()
        await drained(infra.kafka, (f"{infra.prefix}{inst}.instructions", [instructions]))
    finally:
        await banks.stop()
    [notice] = banks.refused
    assert (notice.response_id, notice.instruction_id, notice.error.code) == (
        stray.response_id,
        stray.instruction_id,
        "not_found",
    )
    assert banks.answered == {}
    # Nothing answered: the answer topic holds only the stray answer.
    on_answers = await read_topic(infra.kafka, answers)
    assert [orjson.loads(r.value)["response_id"] for r in on_answers] == [str(stray.response_id)]

    # By webhook: taken in once, and acknowledged (200), so the relay does not send it again.
    secret = "s" * 32
    by_hook = settings.model_copy(update={"kafka_institutions": [], "webhook_institutions": [inst]})
    hooks = SimBanks(infra.common, by_hook, api_keys={}, webhook_secrets={inst: secret}, http=coord.client)
    statuses = []
    transport = httpx.ASGITransport(app=webhook.app(hooks))
    async with httpx.AsyncClient(transport=transport, base_url="http://banksim") as client:
        for _ in range(2):
            headers = signing.headers(secret, copy.value, notice.message_id)
            answer = await client.post(f"/webhooks/{inst}", content=copy.value, headers=headers)
            statuses.append(answer.json()["status"])
    assert statuses == ["accepted", "duplicate"]
    assert [n.message_id for n in hooks.refused] == [notice.message_id]
