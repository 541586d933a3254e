"""Institutions answering on their own Kafka answer topics: applied once; a foreign or illegal answer is
refused without stopping the partition; an answer is bound to the topic it came from."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable
from typing import Any

import orjson
import pytest

from services.coordination.instructions import consumer
from streams import topics
from streams.producer import Producer, Record
from streams.schemas.instructions import Response
from tests import factories as f
from tests.coordination.conftest import bank, issue, open_case
from tests.kafka_tools import committed, eventually, on_kafka

pytestmark = pytest.mark.integration


def _answer(
    infra: Any, stop: dict[str, Any], *, on: str, naming: str, outcome: str, held: str | None = None
) -> Record:
    """An answer to `stop` written on `on`'s answer topic, whose body names `naming`."""
    msg = Response(
        response_id=uuid.uuid4(),
        instruction_id=uuid.UUID(stop["id"]),
        institution_id=naming,
        outcome=outcome,
        held_amount=held,
        responded_at=f.now(),
    )
    return Record(
        topic=topics.name(topics.responses_from(on), infra.prefix),
        key=stop["id"].encode(),
        value=msg.model_dump_json().encode(),
    )


async def _is(expected: int, value: Awaitable[int]) -> bool:
    return await value == expected


async def _send(kafka: Any, records: list[Record]) -> None:
    producer = Producer(kafka, client_id="test-bank")
    await producer.start()
    try:
        await producer.send_all(records)
    finally:
        await producer.stop()


async def test_answers_on_the_response_topic(infra, coord, sessions):
    c = coord.client
    op = f.officer()
    inst, _, _ = await bank(sessions)
    intruder, _, _ = await bank(sessions)
    inst_kafka = await on_kafka(infra, inst, "bank")
    intruder_kafka = await on_kafka(infra, intruder, "bank")
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "6000.00"))
    stop = await issue(
        c, op, case_id, kind="stop_payment", institution_id=inst, account=account, amount="6000.00"
    )
    # On its own topic, the intruder can only name itself (not addressed to it: refused) or name the
    # institution the instruction is for (refused: the topic is the intruder's, whatever the body says).
    await _send(
        intruder_kafka,
        [
            _answer(infra, stop, on=intruder, naming=intruder, outcome="executed", held="6000.00"),
            _answer(infra, stop, on=intruder, naming=inst, outcome="account_not_found"),
        ],
    )
    # Both read and refused (the offsets committed past them) before the institution answers.
    group = f"{infra.prefix}{consumer.GROUP}"
    intruder_topic = topics.name(topics.responses_from(intruder), infra.prefix)
    await eventually(lambda: _is(2, committed(infra.kafka, group, intruder_topic)), timeout_s=20)
    got = (await c.get(f"/v1/instructions/{stop['id']}", headers=op)).json()
    assert got["status"] in ("issued", "delivered") and got["held_amount"] is None
    # A value no column can store (a NUL in its reason) passes the schema: refused, not retried until the
    # consumer stops, so the answers after it are applied.
    rejected = _answer(infra, stop, on=inst, naming=inst, outcome="rejected")
    unstorable = dataclasses.replace(
        rejected, value=orjson.dumps({**orjson.loads(rejected.value), "reason": "no\x00pe"})
    )
    await _send(
        inst_kafka,
        [
            Record(topics.name(topics.responses_from(inst), infra.prefix), b"not json", key=b"x"),
            unstorable,
            _answer(infra, stop, on=inst, naming=inst, outcome="acknowledged"),
            _answer(infra, stop, on=inst, naming=inst, outcome="executed", held="6000.00"),
            # too late: kept (an acknowledgement after the final answer is stale), not applied
            _answer(infra, stop, on=inst, naming=inst, outcome="acknowledged"),
        ],
    )

    async def executed() -> bool:
        got = (await c.get(f"/v1/instructions/{stop['id']}", headers=op)).json()
        answers = (await c.get(f"/v1/instructions/{stop['id']}/responses", headers=op)).json()
        return got["status"] == "executed" and got["held_amount"] == "6000.00" and len(answers) == 3

    await eventually(executed, timeout_s=20)
    responses = (await c.get(f"/v1/instructions/{stop['id']}/responses", headers=op)).json()
    assert [(r["institution_id"], r["outcome"], r["channel"]) for r in responses] == [
        (inst, "acknowledged", "kafka"),
        (inst, "executed", "kafka"),
        (inst, "acknowledged", "kafka"),
    ]
