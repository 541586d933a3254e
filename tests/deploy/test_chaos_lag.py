"""The fault suite's settling measures each consumer group's lag on its own: two groups reading one topic
(the alerts: coordination and the notifier) are each counted, so one at the end cannot hide the other."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from deploy.chaos.checks import lag
from tests import factories as f
from tests.conftest import Infra
from tests.streams.test_consumer import _topic_with

pytestmark = pytest.mark.integration


async def _commit(infra: Infra, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(**infra.kafka.options(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await consumer.stop()


async def test_a_group_behind_on_a_topic_another_group_has_read_to_its_end_is_counted(infra: Infra):
    topic = await _topic_with(infra, [b"a", b"b", b"c", b"d", b"e", b"f"], partitions=2)
    prefix = f"{infra.prefix}{f.unique('lag')}-"
    ends = {TopicPartition(topic, 0): 3, TopicPartition(topic, 1): 3}
    await _commit(infra, f"{prefix}done", ends)
    await _commit(infra, f"{prefix}behind", {TopicPartition(topic, 0): 1, TopicPartition(topic, 1): 3})

    assert await lag(infra.kafka, prefix) == {"behind": 2}

    await _commit(infra, f"{prefix}behind", ends)
    assert await lag(infra.kafka, prefix) == {}


async def test_a_group_past_the_last_record_of_a_transaction_has_no_lag(infra: Infra):
    # The outbox relay writes in transactions: a partition ends with a commit marker (and, after a fenced
    # attempt, aborted records) that no consumer receives, so a consumer's commit after its last record
    # stays short of the end. That is no lag; a committed record not handled yet is.
    topic = await _topic_with(infra, [], partitions=1)
    tp = TopicPartition(topic, 0)
    producer = AIOKafkaProducer(**infra.kafka.options(), transactional_id=f.unique("lag-relay"))
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"handled", partition=0)  # offset 0, its marker 1
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted", partition=0)  # offset 2, its marker 3
        await producer.abort_transaction()
    finally:
        await producer.stop()
    prefix = f"{infra.prefix}{f.unique('lag')}-"
    await _commit(infra, f"{prefix}done", {tp: 1})
    await _commit(infra, f"{prefix}behind", {tp: 0})

    assert await lag(infra.kafka, prefix) == {"behind": 4}
