"""Partitioning a foreign client cannot break: a record on a partition its key does not hash to (a producer
with another partitioner than Kafka's murmur2, e.g. librdkafka's default CRC32) is moved by the scorer to
the right partition, counted, so a person's call and transfer still meet and alert."""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.partitioner import DefaultPartitioner, murmur2

from services.scorer.main import TopicLayoutError
from streams import keys, topics
from streams.admin import admin_client, ensure_topics, replication, wait_for_leaders
from streams.producer import Producer, Record
from tests import factories as f
from tests.kafka_tools import broker_frozen, eventually, read_topic
from tests.scorer import helpers as h
from tests.scorer.model_factory import sample
from tests.scorer.scenes import event_record, scene, stage_one

EVERY = list(range(topics.EVENT_PARTITIONS))


def test_murmur2_is_the_java_clients() -> None:
    # Kafka's own test vectors for org.apache.kafka.common.utils.Utils.murmur2 (UtilsTest).
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    assert {k: ctypes.c_int32(murmur2(k)).value for k in cases} == cases
    for _ in range(50):
        key = keys.person_key(f.phone())
        assert keys.partition_of(key, len(EVERY)) == DefaultPartitioner()(key, EVERY, EVERY)


@pytest.mark.integration
async def test_events_on_wrong_partitions_are_moved_and_meet(infra: Any) -> None:
    prefix = await h.fresh_prefix(infra)
    victim, mule = f.phone(), f.account("MULE")
    key = keys.person_key(victim)
    right = keys.partition_of(key, topics.EVENT_PARTITIONS)
    telecom, bank = (topics.name(topics.EVENT_TOPICS[k], prefix) for k in ("telecom", "bank"))
    # Two different wrong partitions, as a client hashing the key otherwise would pick.
    call, transfer = h.scam_call(victim), h.big_transfer(victim, f.account(), mule)
    misplaced = [
        Record(
            telecom, orjson.dumps({"institution": "tel-a", "event": call}), key, partition=(right + 1) % 6
        ),
        Record(
            bank, orjson.dumps({"institution": "bank-a", "event": transfer}), key, partition=(right + 4) % 6
        ),
    ]
    before = {t: sample("stopline_scorer_repartitioned_total", topic=t) for t in (telecom, bank)}
    instance = h.scorer(infra, prefix)
    await h.start(instance)
    producer = Producer(infra.kafka, client_id="test-foreign-partitioner")
    await producer.start()
    try:
        await producer.send_all(misplaced[:1])
        await eventually(
            lambda: sample("stopline_scorer_repartitioned_total", topic=telecom) > before[telecom]
        )
        await producer.send_all(misplaced[1:])
        (alert,) = await eventually(lambda: h.alerts_about(infra, prefix, victim), timeout_s=20)
    finally:
        await producer.stop()
        await instance.stop()
    # They met: the transfer is alerted as following the call.
    assert alert.typology == "call_then_transfer"
    assert set(alert.triggering_event_ids) == {f"tel-a:{call['event_id']}", f"bank-a:{transfer['event_id']}"}
    for topic, record in zip((telecom, bank), misplaced, strict=True):
        assert sample("stopline_scorer_repartitioned_total", topic=topic) == before[topic] + 1
        moved = [r for r in await read_topic(infra.kafka, topic) if r.partition == right]
        assert [r.value for r in moved] == [record.value]  # the record, untouched, where its key belongs
        assert dict(moved[0].headers)["stopline.moved-from"] == str(record.partition).encode()


def test_a_record_past_the_replay_with_an_older_timestamp_leaves_the_replay_whole() -> None:
    """A record moved here keeps its first timestamp, so in time order it may come before records the
    partition's previous owner handled: those stay replayed (their movements are out already), and only
    the new record's are sent."""
    s = scene()
    persons = stage_one()
    handled = dataclasses.replace(
        event_record(*s.transfer("100.00", minutes_ago=5), offset=10), timestamp=2_000
    )
    new = dataclasses.replace(event_record(*s.transfer("200.00", minutes_ago=4), offset=11), timestamp=1_000)
    tp = TopicPartition(handled.topic, handled.partition)
    persons.checkpoints.replay_until[tp] = 11  # the previous owner committed offset 11
    out = persons.process({tp: [handled, new]})
    sent = {orjson.loads(r.value or b"")["event_ref"] for r in out}
    assert sent and all(new_id(new) in ref for ref in sent)
    assert persons.checkpoints.replayed == 1 and persons.checkpoints.replay_until == {}


def new_id(record: Any) -> str:
    return str(orjson.loads(record.value)["event"]["event_id"])


@pytest.mark.integration
async def test_a_scorer_refuses_topics_whose_partition_counts_are_not_the_registrys(infra: Any) -> None:
    """Partitions added to one event topic would split a person's records silently: the scorer does not
    start, and says which topic and why."""
    prefix = f"{infra.prefix}{f.unique('parts')}-"
    grown = topics.name(topics.EVENTS_BANK, prefix)
    async with admin_client(infra.kafka) as admin:
        replicas = await replication(admin, 10)
        await admin.create_topics([NewTopic(grown, topics.EVENT_PARTITIONS + 2, replicas)])
        await wait_for_leaders(admin, {grown: topics.EVENT_PARTITIONS + 2}, 30)
    await ensure_topics(infra.kafka, prefix)
    with pytest.raises(TopicLayoutError, match=rf"{grown} has 8 partitions \(registry: 6\)"):
        await h.scorer(infra, prefix).start()
    bare = f"{infra.prefix}{f.unique('bare')}-"  # nothing made
    events = topics.name(topics.EVENTS_BANK, bare)
    with pytest.raises(TopicLayoutError, match=rf"{events} has no partitions \(registry: 6\)"):
        await h.scorer(infra, bare).start()


@pytest.mark.integration
@pytest.mark.alone  # it freezes the Kafka both workers share
async def test_a_scorer_starting_while_kafka_does_not_answer_checks_its_topics_once_it_does(
    infra: Any,
) -> None:
    """The check of the topics' layout asks Kafka until it answers, as the producer's start does: a start
    that failed on a frozen node restarted the process (in a fault run), to load its model and state again."""
    scorer = h.scorer(infra, f"{infra.prefix}{f.unique('late')}-")
    await ensure_topics(infra.kafka, scorer.prefix)
    await scorer.producer.start()
    scorer.producer.timeout_s = 1.0
    client = scorer.producer._producer.client  # noqa: SLF001 - the questions, counted on their way
    asked = 0
    ask = client.fetch_all_metadata

    async def counted() -> Any:
        nonlocal asked
        asked += 1
        return await ask()

    client.fetch_all_metadata = counted
    try:
        with broker_frozen():
            checking = asyncio.create_task(scorer._check_partitions())
            # The fault: the first question went unanswered, and it was asked again (not longer: see
            # broker_frozen).
            await eventually(lambda: asked >= 2, timeout_s=3.5)
            assert not checking.done()
        await asyncio.wait_for(checking, 30)  # the registry's layout: no TopicLayoutError
    finally:
        await scorer.producer.stop()


def test_a_record_too_large_to_set_aside_whole_is_set_aside_cut_not_crashed_on() -> None:
    """With a compressed batch the broker takes a record larger than a request may be: its dead letter would
    be refused by the producer for good, and the stage would stop on it at every read. It is set aside cut
    to its first bytes, with its size."""
    good = event_record(*scene().transfer("100.00", minutes_ago=5), offset=1)
    garbled = dataclasses.replace(good, value=b"\x00" * 3_000_000)
    [letter] = stage_one().process({TopicPartition(good.topic, good.partition): [garbled]})
    assert letter.topic == topics.name(topics.DEAD_LETTER)
    assert Producer.fits(letter)
    headers = dict(letter.headers)
    assert (headers["reason"], headers["truncated-from"]) == (b"invalid", b"3000000")
    assert letter.value == b"\x00" * (64 * 1024)
