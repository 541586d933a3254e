"""Events produced straight to Kafka on an institution's intake topic: checked and forwarded once by
ingest; an envelope naming another institution, a forbidden kind or an invalid event is dead-lettered."""

from __future__ import annotations

import math

import orjson
import pytest
from aiokafka import ConsumerRecord, TopicPartition

from services.ingest.claims import Claims
from services.ingest.intake import GROUP, Intake
from services.institutions.directory import Directory
from services.kit import outages
from streams import keys, topics
from streams.connection import KafkaConnection
from streams.producer import Producer, Record
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import committed, eventually, on_kafka, produce, read_topic
from tests.metrics import sample

pytestmark = pytest.mark.integration


def _record(infra: Infra, on: str, naming: str, event: dict) -> Record:
    phone = event.get("payer_phone") or event["callee"]
    envelope = {"institution": naming, "received_at": None, "event": event}
    return Record(
        topics.name(topics.intake_for(on), infra.prefix), orjson.dumps(envelope), keys.person_key(phone)
    )


async def _handled(infra: Infra, kafka: KafkaConnection, on: str, records: list[Record]) -> list[dict]:
    """Produce the records to `on`'s intake topic as `kafka`, wait until ingest has committed them all, and
    return the headers of the dead letters of that topic."""
    await produce(kafka, records, client_id="test-intake")
    intake = topics.name(topics.intake_for(on), infra.prefix)

    async def all_read() -> bool:
        return await committed(infra.kafka, f"{infra.prefix}{GROUP}", intake) == len(records)

    await eventually(all_read, timeout_s=30)
    dead = await read_topic(infra.kafka, topics.name(topics.DEAD_LETTER, infra.prefix))
    return [dict(r.headers) for r in dead if dict(r.headers)["source.topic"] == intake.encode()]


async def test_events_on_the_intake_topic_are_checked_and_forwarded_once(infra, ingest, sessions):
    bank, headers = await f.institution(sessions, "bank")
    other, _ = await f.institution(sessions, "bank")
    kafka = await on_kafka(infra, bank, "bank")
    person = f.phone()
    good = f.transfer(
        person, payer_account=f.account(), payee_account=f.account(), amount="75.00", at=f.now()
    )
    posted = f.transfer(
        person, payer_account=f.account(), payee_account=f.account(), amount="9.00", at=f.now()
    )
    assert (await ingest.post("/v1/events", json={"events": [posted]}, headers=headers)).status_code == 200
    reasons = ["forbidden_kind", "invalid", "wrong_sender"]

    async def refusals() -> list[float]:
        return [
            await sample(ingest, "stopline_ingest_rejected_total", source="bank", reason=reason)
            for reason in reasons
        ]

    before = await refusals()
    records = [
        _record(infra, bank, bank, good),
        _record(infra, bank, other, {**good, "event_id": f.unique("forged")}),  # names another: refused
        _record(infra, bank, bank, f.call(person, start=f.minutes_ago(3), minutes=2)),  # a bank's call
        _record(infra, bank, bank, {**good, "event_id": f.unique("bad"), "amount": "-1"}),
        _record(infra, bank, bank, good),  # a repeat
        _record(infra, bank, bank, posted),  # posted over HTTP before
    ]
    letters = await _handled(infra, kafka, bank, records)
    events = await read_topic(infra.kafka, topics.name(topics.EVENTS_BANK, infra.prefix))
    mine = [orjson.loads(r.value) for r in events if r.key == keys.person_key(person)]
    assert sorted((e["event"]["event_id"], e["institution"]) for e in mine) == sorted(
        [(good["event_id"], bank), (posted["event_id"], bank)]
    )
    assert all(e["received_at"] for e in mine)  # stamped by ingest
    assert sorted(h["reason"].decode() for h in letters) == reasons
    # Each refused record counted once (the offsets committed above: counted before).
    assert [a - b for a, b in zip(await refusals(), before, strict=True)] == [1, 1, 1]


async def test_an_event_id_reused_for_other_content_is_dead_lettered(infra, ingest, sessions):
    """From Kafka as over HTTPS: an id accepted before for other content (by an earlier record of the same
    batch, too) is refused with its reason instead of being dropped as a repeat; a true repeat is dropped
    (after a refused one), and the rest forwarded."""
    telecom, headers = await f.institution(sessions, "telecom")
    kafka = await on_kafka(infra, telecom, "telecom")
    person = f.phone()
    posted = {**f.call(person, start=f.minutes_ago(30), minutes=1), "duration_s": 60}
    assert (await ingest.post("/v1/events", json={"events": [posted]}, headers=headers)).status_code == 200
    twice = f.call(person, start=f.minutes_ago(20), minutes=2)
    fresh = f.call(person, start=f.minutes_ago(10), minutes=3)
    records = [
        _record(infra, telecom, telecom, {**posted, "duration_s": 3000}),  # accepted before as 60
        _record(infra, telecom, telecom, posted),  # a true repeat
        _record(infra, telecom, telecom, twice),
        _record(infra, telecom, telecom, {**twice, "caller_reported": True}),  # the record before has it
        _record(infra, telecom, telecom, fresh),
    ]
    await _handled(infra, kafka, telecom, records)
    intake = topics.name(topics.intake_for(telecom), infra.prefix)
    events = await read_topic(infra.kafka, topics.name(topics.EVENTS_TELECOM, infra.prefix))
    mine = [orjson.loads(r.value)["event"] for r in events if r.key == keys.person_key(person)]
    assert sorted((e["event_id"], e["duration_s"], e["caller_reported"]) for e in mine) == sorted(
        [(posted["event_id"], 60, False), (twice["event_id"], 120, False), (fresh["event_id"], 180, False)]
    )
    dead = await read_topic(infra.kafka, topics.name(topics.DEAD_LETTER, infra.prefix))
    letters = [
        (orjson.loads(r.value)["event"], dict(r.headers))
        for r in dead
        if dict(r.headers)["source.topic"] == intake.encode()
    ]
    assert sorted((e["event_id"], h["reason"].decode()) for e, h in letters) == sorted(
        [(posted["event_id"], "conflict"), (twice["event_id"], "conflict")]
    )
    assert all(
        h["detail"].decode().startswith("this event_id was accepted before for other") for _, h in letters
    )


async def test_a_batch_retried_after_its_dead_letters_were_slow_sends_them_once(infra, sessions):
    """A refused record's dead letter is handed to Kafka and landed by the runner before it commits: a
    wait for it that ran out (Kafka slow) no longer has the whole batch retried and the letter sent again,
    on a topic nothing deduplicates."""
    bank, _ = await f.institution(sessions, "bank")
    kafka = infra.kafka.as_principal("stopline-ingest")
    producer = Producer(kafka, client_id="test-intake-dead-letters")
    await producer.start()
    intake_topic = topics.name(topics.intake_for(bank), infra.prefix)
    bad = orjson.dumps({"institution": "someone-else", "received_at": None, "event": {}})
    record = ConsumerRecord(
        intake_topic, 0, 12345, 0, 0, keys.person_key(f.phone()), bad, None, 0, len(bad), ()
    )
    producer.timeout_s = 0.001  # any wait on Kafka runs out
    try:
        claims = Claims(sessions, producer, kafka, topic_prefix=infra.prefix)
        intake = Intake(infra.common, sessions, producer, claims, Directory(sessions))
        assert intake.runner.handler_max_s == math.inf  # it waits on Kafka on purpose: never told stuck
        for _ in range(3):  # as the runner does: an outage is retried
            try:
                landing = await intake.handle({TopicPartition(intake_topic, 0): [record]})
            except Exception as exc:  # noqa: BLE001 - only outages are retried
                assert outages.unavailable(exc)
                continue
            assert landing is not None
            await landing
            break
    finally:
        await producer.stop()
    letters = await read_topic(infra.kafka, topics.name(topics.DEAD_LETTER, infra.prefix))
    mine = [
        r
        for r in letters
        if (dict(r.headers).get("source.topic"), dict(r.headers).get("source.offset"))
        == (intake_topic.encode(), b"12345")
    ]
    assert len(mine) == 1
    assert dict(mine[0].headers)["consumer"] == f"{infra.prefix}{GROUP}".encode()
