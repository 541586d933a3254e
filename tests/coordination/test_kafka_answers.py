"""Institutions answering on their own Kafka answer topics: applied once; a foreign or illegal answer is
refused without stopping the partition, and its sender told so on its instruction topic, once per record;
an answer is bound to the topic it came from."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
import pytest
from aiokafka import TopicPartition

from services.coordination.instructions import consumer
from services.coordination.instructions.service import Context
from services.institutions import delivery
from services.kit.db import unit_of_work
from streams import topics
from streams.connection import KafkaConnection
from streams.producer import Record
from streams.schemas.instructions import Response
from tests import factories as f
from tests.coordination.conftest import App, issue, open_case, respond
from tests.coordination.receiver import Receiver
from tests.kafka_tools import committed, eventually, on_kafka, produce, read_topic
from tests.metrics import sample

pytestmark = pytest.mark.integration

_BANKS = 6  # what the module's tests use


class Bank(NamedTuple):
    ident: str
    key: dict[str, str]  # its API key's headers
    kafka: KafkaConnection  # as its principal


@pytest.fixture(scope="module")
async def banks(infra, coord, sessions) -> AsyncIterator[list[Bank]]:
    """Banks on Kafka, each test taking its own. Provisioned together, up front: the app's consumer finds
    their answer topics at one metadata refresh (up to `PATTERN_REFRESH_MS`, 5 s) for the module, not at
    one of each test's. Each test still waits, through its barrier, for its answers to be read."""
    idents = [await f.institution(sessions, "bank") for _ in range(_BANKS)]
    kafkas = await asyncio.gather(*(on_kafka(infra, ident, "bank") for ident, _ in idents))
    yield [Bank(ident, key, kafka) for (ident, key), kafka in zip(idents, kafkas, strict=True)]


async def _stop_to(coord: App, op: dict[str, str], inst: str, amount: str) -> dict[str, Any]:
    """A case and a stop-payment of `amount` issued to `inst`."""
    account = f.account("MULE")
    case_id = await open_case(coord.client, op, (inst, account, amount))
    return await issue(
        coord.client, op, case_id, kind="stop_payment", institution_id=inst, account=account, amount=amount
    )


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


async def test_answers_on_the_response_topic(infra, coord, banks):
    c = coord.client
    op = f.officer()
    (inst, key, inst_kafka), (intruder, intruder_key, intruder_kafka) = banks.pop(), banks.pop()
    stop = await _stop_to(coord, op, inst, "6000.00")
    # On its own topic, the intruder can only name itself (not addressed to it: refused) or name the
    # institution the instruction is for (refused: the topic is the intruder's, whatever the body says).
    foreign = _answer(infra, stop, on=intruder, naming=intruder, outcome="executed", held="6000.00")
    forged = _answer(infra, stop, on=intruder, naming=inst, outcome="account_not_found")
    await produce(intruder_kafka, [foreign, forged])
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
    # Not an outcome; with the same response id as the answer above, refused as well: each record is told.
    misspelt = dataclasses.replace(
        rejected, value=orjson.dumps({**orjson.loads(rejected.value), "outcome": "done"})
    )
    garbage = Record(topics.name(topics.responses_from(inst), infra.prefix), b"not json", key=b"x")
    await produce(
        inst_kafka,
        [
            garbage,
            misspelt,
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

    # Each sender is told of its own refused records, on its own instruction topic, as the API would
    # answer it; the intruder learns nothing of the instruction that is not its own (as on the API: 404).
    told = await read_topic(
        infra.kafka,
        topics.name(topics.instructions_for(intruder), infra.prefix),
        until=lambda rs: len(_refusals(rs)) == 2,
        timeout_s=20,
    )
    by_response = {n["response_id"]: n for n in _refusals(told)}
    not_its_own, naming_another = by_response[_of(foreign)], by_response[_of(forged)]
    by_api = await respond(c, intruder_key, stop["id"], "executed", held_amount="6000.00")
    assert by_api.status_code == 404 and _as_by_api(not_its_own) == by_api.json()["error"]
    assert not_its_own["institution_id"] == naming_another["institution_id"] == intruder
    assert naming_another["error"]["code"] == "forbidden"
    assert naming_another["error"]["details"][0]["field"] == "body.institution_id"
    told = await read_topic(
        infra.kafka,
        topics.name(topics.instructions_for(inst), infra.prefix),
        until=lambda rs: len(_refusals(rs)) == 3,
        timeout_s=20,
    )
    # (Read from more than one partition: told apart by what they say.)
    [not_json] = [n for n in _refusals(told) if n["response_id"] is None]
    by_field = {n["error"]["details"][0]["field"]: n for n in _refusals(told) if n["response_id"]}
    assert by_field.keys() == {"body.outcome", "body.reason"}
    invalid, unstored = by_field["body.outcome"], by_field["body.reason"]
    # Unreadable: known only by where it was read.
    [record] = [r for r in await read_topic(infra.kafka, garbage.topic) if r.value == b"not json"]
    assert not_json["record"] == {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }
    assert (not_json["response_id"], not_json["instruction_id"]) == (None, None)
    assert not_json["error"]["message"] == "request body could not be parsed"
    assert [p["field"] for p in not_json["error"]["details"]] == ["body"]
    # JSON the schema refused: the ids it names readably, and the field, as a 422 names it.
    assert (invalid["response_id"], invalid["instruction_id"]) == (_of(misspelt), stop["id"])
    assert len(invalid["error"]["details"]) == 1
    assert unstored["response_id"] == _of(unstorable)
    by_api = await respond(c, key, stop["id"], "rejected", reason="no\x00pe")
    assert by_api.status_code == 422 and _as_by_api(unstored) == by_api.json()["error"]


def _refusals(records: list[Any]) -> list[dict[str, Any]]:
    """The refused-answer notices among records of an institution's instruction topic, in their order."""
    values = [orjson.loads(r.value) for r in records]
    return [v for v in values if v["type"] == "answer_refused"]


def _of(record: Record) -> str:
    return str(orjson.loads(record.value)["response_id"])


def _as_by_api(notice: dict[str, Any]) -> dict[str, Any]:
    """A notice's `error` as an HTTP error body's (which leaves out details it has none of)."""
    return {k: v for k, v in notice["error"].items() if v is not None}


async def test_a_refused_answer_is_told_to_its_sender_once(infra, coord, sessions, banks):
    c = coord.client
    op = f.officer()
    inst, key, inst_kafka = banks.pop()
    stop = await _stop_to(coord, op, inst, "900.00")
    instructions = topics.name(topics.instructions_for(inst), infra.prefix)
    held_nothing = _answer(infra, stop, on=inst, naming=inst, outcome="executed", held="0.00")
    await produce(inst_kafka, [held_nothing])

    told = await read_topic(infra.kafka, instructions, until=lambda rs: len(_refusals(rs)) == 1, timeout_s=20)
    notice = _refusals(told)[0]
    # Stated as the API states the same answer's refusal (its 422 body's `error`).
    same_by_api = await respond(c, key, stop["id"], "executed", held_amount="0.00")
    assert same_by_api.status_code == 422
    assert _as_by_api(notice) == same_by_api.json()["error"]
    assert notice["error"]["details"][0]["field"] == "body.held_amount"
    assert (notice["institution_id"], notice["response_id"], notice["instruction_id"]) == (
        inst,
        _of(held_nothing),
        stop["id"],
    )
    [refused] = [
        r for r in await read_topic(infra.kafka, held_nothing.topic) if r.value == held_nothing.value
    ]
    assert notice["record"] == {
        "topic": refused.topic,
        "partition": refused.partition,
        "offset": refused.offset,
    }
    assert notice["message_id"].startswith("refused:")

    # The same record handled again, twice: a batch retried after a failure, and a consumer that took the
    # partition over from the last committed offset (beside the app's, which handled it first).
    runner = consumer.build_runner(
        infra.common, sessions, Context(coord.settings, infra.prefix, infra.common.event_max_ahead_s)
    )
    again = {TopicPartition(refused.topic, refused.partition): [refused]}
    repeats = await sample(c, "stopline_instruction_refusals_told_total", outcome="repeat")
    reason = same_by_api.json()["error"]["code"]
    refusals_of_inst = await sample(
        c, "stopline_instruction_responses_refused_total", institution=inst, reason=reason
    )
    await runner.handle(again)
    await runner.handle(again)
    assert await sample(c, "stopline_instruction_refusals_told_total", outcome="repeat") == repeats + 2
    # Counted each time it is refused, under the institution whose topic it came on (what the alert names).
    assert (
        await sample(c, "stopline_instruction_responses_refused_total", institution=inst, reason=reason)
        == refusals_of_inst + 2
    )

    # Barrier: an accepted answer, then a refused one, on the same partition (keyed by the instruction): the
    # second's notice comes after any notice of the first, and of the record handled again.
    accepted = _answer(infra, stop, on=inst, naming=inst, outcome="acknowledged")
    later = _answer(infra, stop, on=inst, naming=inst, outcome="executed", held="1000.00")  # over 900
    await produce(inst_kafka, [accepted, later])
    told = await read_topic(
        infra.kafka,
        instructions,
        until=lambda rs: any(n["response_id"] == _of(later) for n in _refusals(rs)),
        timeout_s=20,
    )
    assert [n["response_id"] for n in _refusals(told)] == [_of(held_nothing), _of(later)]
    assert _refusals(told)[1]["error"]["details"][0]["field"] == "body.held_amount"
    got = (await c.get(f"/v1/instructions/{stop['id']}", headers=op)).json()
    assert got["status"] == "acknowledged"


async def test_a_refusal_goes_where_the_instructions_go(infra, coord, sessions, banks):
    """An institution taking instructions on its topic and by webhook is told on both, once on each."""
    receiver = Receiver(secret="")
    await receiver.start()
    try:
        inst, _, inst_kafka = banks.pop()
        async with unit_of_work(sessions) as session:
            secret = await delivery.configure(
                session, institution_id=inst, kafka=True, webhook_url=receiver.url
            )
        assert secret is not None
        receiver.secret = secret
        stop = {"id": str(uuid.uuid4())}  # an instruction that does not exist
        stray = _answer(infra, stop, on=inst, naming=inst, outcome="acknowledged")
        await produce(inst_kafka, [stray])
        instructions = topics.name(topics.instructions_for(inst), infra.prefix)
        told = await read_topic(infra.kafka, instructions, until=lambda rs: bool(_refusals(rs)), timeout_s=20)
        [notice] = _refusals(told)
        await eventually(lambda: notice["message_id"] in receiver.processed, timeout_s=20)
    finally:
        await receiver.stop()
    assert receiver.processed[notice["message_id"]] == notice
    assert receiver.raw == [notice["message_id"]]
    assert (notice["error"]["code"], notice["response_id"]) == ("not_found", _of(stray))


async def test_an_undated_answer_is_dated_when_read_whatever_its_records_timestamp(infra, coord, banks):
    """`responded_at` is optional on Kafka as on the API: left out, the answer is dated when Stopline reads
    it, as the API dates one when it receives it. The record's timestamp is the producer's clock: here 1970,
    which would have dated the answer before its instruction and refused it."""
    c = coord.client
    op = f.officer()
    inst, _, inst_kafka = banks.pop()
    stop = await _stop_to(coord, op, inst, "500.00")
    dated = _answer(infra, stop, on=inst, naming=inst, outcome="executed", held="500.00")
    undated = dataclasses.replace(
        dated,
        value=orjson.dumps({k: v for k, v in orjson.loads(dated.value).items() if k != "responded_at"}),
        timestamp_ms=0,
    )
    sent = datetime.now(UTC)
    await produce(inst_kafka, [undated])

    async def answered() -> bool:
        return bool((await c.get(f"/v1/instructions/{stop['id']}/responses", headers=op)).json())

    await eventually(answered, timeout_s=20)
    stored_by = datetime.now(UTC)
    [stored] = (await c.get(f"/v1/instructions/{stop['id']}/responses", headers=op)).json()
    assert stored["response_id"] == _of(undated) and stored["outcome"] == "executed"
    assert sent <= datetime.fromisoformat(stored["responded_at"]) <= stored_by
    assert (await c.get(f"/v1/instructions/{stop['id']}", headers=op)).json()["status"] == "executed"


async def test_an_answer_dated_out_of_bounds_is_refused_on_both_channels(infra, coord, banks):
    """Given after its instruction was issued and not in the future (give or take the clocks' skew): one
    dated outside is refused naming `responded_at`, on the API and on Kafka alike, and nothing is kept."""
    c = coord.client
    op = f.officer()
    inst, key, inst_kafka = banks.pop()
    stop = await _stop_to(coord, op, inst, "700.00")
    issued_at = datetime.fromisoformat(stop["issued_at"])
    skew = timedelta(seconds=infra.common.event_max_ahead_s)
    future, past = f.now() + skew + timedelta(minutes=1), issued_at - skew - timedelta(minutes=1)
    by_api = {
        at: await respond(c, key, stop["id"], "executed", held_amount="700.00", responded_at=at.isoformat())
        for at in (future, past)
    }
    for answer in by_api.values():
        assert answer.status_code == 422, answer.text
        assert [p["field"] for p in answer.json()["error"]["details"]] == ["body.responded_at"]
    assert "in the future" in by_api[future].json()["error"]["message"]
    assert "before the instruction was issued" in by_api[past].json()["error"]["message"]

    on_kafka_at = {}
    for at in (future, past):
        dated = _answer(infra, stop, on=inst, naming=inst, outcome="executed", held="700.00")
        value = orjson.dumps({**orjson.loads(dated.value), "responded_at": at.isoformat()})
        on_kafka_at[at] = dataclasses.replace(dated, value=value)
    await produce(inst_kafka, list(on_kafka_at.values()))
    told = await read_topic(
        infra.kafka,
        topics.name(topics.instructions_for(inst), infra.prefix),
        until=lambda rs: len(_refusals(rs)) == 2,
        timeout_s=20,
    )
    for notice in _refusals(told):
        at = next(at for at, record in on_kafka_at.items() if _of(record) == notice["response_id"])
        assert _as_by_api(notice) == by_api[at].json()["error"]
    assert (await c.get(f"/v1/instructions/{stop['id']}/responses", headers=op)).json() == []
    # Within the skew, a bank's clock a little behind Stopline's: taken.
    behind = issued_at - skew / 2
    taken = await respond(
        c, key, stop["id"], "executed", held_amount="700.00", responded_at=behind.isoformat()
    )
    assert taken.status_code == 200, taken.text
