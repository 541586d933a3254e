"""Institutions answering on the Kafka response topic: applied once; a foreign or illegal answer is
refused without stopping the partition."""

from __future__ import annotations

import uuid

import pytest

from streams import topics
from streams.producer import Producer, Record
from streams.schemas.instructions import Response
from tests import factories as f
from tests.coordination.conftest import bank, issue, open_case
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration


async def test_answers_on_the_response_topic(infra, coord, sessions):
    c = coord.client
    op = f.officer()
    inst, _, _ = await bank(sessions)
    intruder, _, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "6000.00"))
    stop = await issue(
        c, op, case_id, kind="stop_payment", institution_id=inst, account=account, amount="6000.00"
    )

    def answer(institution: str, outcome: str, held: str | None = None) -> Record:
        msg = Response(
            response_id=uuid.uuid4(),
            instruction_id=uuid.UUID(stop["id"]),
            institution_id=institution,
            outcome=outcome,  # type: ignore[arg-type]
            held_amount=held,  # type: ignore[arg-type]
            responded_at=f.now(),
        )
        return Record(
            topic=topics.name(topics.INSTRUCTION_RESPONSES, infra.prefix),
            key=stop["id"].encode(),
            value=msg.model_dump_json().encode(),
        )

    producer = Producer(infra.kafka, client_id="test-bank")
    await producer.start()
    try:
        await producer.send_all(
            [
                answer(intruder, "executed", "6000.00"),  # not addressed to it: refused
                Record(topics.name(topics.INSTRUCTION_RESPONSES, infra.prefix), b"not json", key=b"x"),
                answer(inst, "acknowledged"),
                answer(inst, "executed", "6000.00"),
                answer(inst, "acknowledged"),  # too late: illegal, refused
            ]
        )
    finally:
        await producer.stop()

    async def executed() -> bool:
        got = (await c.get(f"/v1/instructions/{stop['id']}", headers=op)).json()
        return got["status"] == "executed" and got["held_amount"] == "6000.00"

    await eventually(executed, timeout_s=10)
    responses = (await c.get(f"/v1/instructions/{stop['id']}/responses", headers=op)).json()
    assert [(r["institution_id"], r["outcome"], r["channel"]) for r in responses] == [
        (inst, "acknowledged", "kafka"),
        (inst, "executed", "kafka"),
    ]
