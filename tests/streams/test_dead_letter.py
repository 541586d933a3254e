"""A message produced straight to an event topic that fails validation goes to the dead-letter topic
with its reason, is counted once Kafka has it, and does not stop its partition."""

from __future__ import annotations

import orjson
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY

from services.kit.errors import Unavailable
from services.scorer import person_stage
from services.scorer.person_stage import PersonStage
from services.scorer.settings import ScorerSettings
from streams import acls, keys, topics
from streams.dead_letter import dead_letter_record
from streams.producer import Producer
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import read_topic

pytestmark = pytest.mark.integration


def _dead_letters(reason: str) -> float:
    return REGISTRY.get_sample_value("stopline_scorer_dead_letters_total", {"reason": reason}) or 0.0


async def test_poison_messages_go_to_dead_letter_and_the_next_message_is_processed(infra: Infra, scorer):
    person = f.phone()
    key = keys.person_key(person)
    good = f.transfer(
        person, payer_account=f.account(), payee_account=f.account(), amount="75.00", at=f.now()
    )
    bad_schema = {**good, "event_id": f.unique("bad"), "amount": "lots"}
    wrong_key_event = {**good, "event_id": f.unique("wk")}
    messages = [
        (key, b"\x00\x01 not json at all"),
        (key, orjson.dumps({"institution": "bank-direct", "event": bad_schema})),
        (b"some-other-key", orjson.dumps({"institution": "bank-direct", "event": wrong_key_event})),
        (key, orjson.dumps({"institution": "bank-direct", "received_at": None, "event": good})),
    ]
    before = {r: _dead_letters(r) for r in ("invalid", "wrong_key")}
    topic = topics.name(topics.EVENTS_BANK, infra.prefix)
    producer = AIOKafkaProducer(**infra.kafka.options(), enable_idempotence=True)
    await producer.start()
    try:
        for k, v in messages:
            await producer.send_and_wait(topic, v, key=k)
    finally:
        await producer.stop()

    # The good message after the poison ones was processed: its movements were re-keyed by account.
    moves_topic = topics.name(topics.TRANSFERS_BY_ACCOUNT, infra.prefix)
    ref = f"bank-direct:{good['event_id']}"
    await read_topic(
        infra.kafka,
        moves_topic,
        until=lambda recs: sum(orjson.loads(r.value)["event_ref"] == ref for r in recs) == 2,
        timeout_s=15,
    )

    dlq_topic = topics.name(topics.DEAD_LETTER, infra.prefix)
    dead = await read_topic(infra.kafka, dlq_topic, until=lambda recs: len(recs) >= 3, timeout_s=15)
    by_value = {r.value: dict(r.headers) for r in dead}
    poison = by_value[messages[0][1]]
    assert poison["reason"] == b"invalid"
    assert poison["source.topic"] == topic.encode()
    assert poison["consumer"] == f"{infra.prefix}{person_stage.GROUP}".encode()  # the scorer's person stage
    schema_failure = by_value[messages[1][1]]
    assert schema_failure["reason"] == b"invalid"
    assert b"event.bank.transfer.amount" in schema_failure["detail"]
    assert by_value[messages[2][1]]["reason"] == b"wrong_key"
    assert messages[3][1] not in by_value
    assert _dead_letters("invalid") - before["invalid"] == 2
    assert _dead_letters("wrong_key") - before["wrong_key"] == 1


async def test_a_letter_kafka_refused_is_not_counted_and_counted_once_landed(infra: Infra):
    """A batch whose dead letter Kafka refused (here: a principal not allowed to write that topic) is
    retried, as the runner does an outage: the letter is counted once, on the attempt Kafka acknowledged,
    not once per attempt."""
    topic = topics.name(topics.EVENTS_BANK, infra.prefix)
    poison = b"not json: refused, then retried"
    record = ConsumerRecord(
        topic, 0, 424242, 0, 0, keys.person_key(f.phone()), poison, None, 0, len(poison), ()
    )
    batch = {TopicPartition(topic, 0): [record]}
    before = _dead_letters("invalid")
    for principal, refused in ((acls.BLOCKLIST, True), (acls.SCORER, False)):
        producer = Producer(infra.kafka.as_principal(principal), client_id=f"test-dead-letter-{principal}")
        await producer.start()
        try:
            stage = PersonStage(ScorerSettings(), producer, prefix=infra.prefix)
            if refused:
                with pytest.raises(Unavailable):
                    await stage.handle(batch)
                assert _dead_letters("invalid") == before
            else:
                landing = await stage.handle(batch)
                assert landing is not None
                await landing
        finally:
            await producer.stop()
    assert _dead_letters("invalid") - before == 1
    dead = await read_topic(infra.kafka, topics.name(topics.DEAD_LETTER, infra.prefix))
    assert [r.value for r in dead if dict(r.headers)["source.offset"] == b"424242"] == [poison]


def test_a_tombstone_is_set_aside_empty_and_said_to_be_one():
    """A letter keeps the record's bytes; of a record with no value it cannot, so it says so (an outside
    trial read an empty value where docs said untouched)."""
    for value, tombstone in ((None, True), (b"", False), (b"{", False)):
        record = ConsumerRecord("intake.bank-x", 2, 41, 0, 0, b"k", value, None, 1, 0, [])
        letter = dead_letter_record(record, reason="invalid", detail="not JSON", prefix="", consumer="g")
        assert letter.value == (value or b"")
        assert (("tombstone", b"true") in letter.headers) is tombstone
        assert ("source.offset", b"41") in letter.headers
