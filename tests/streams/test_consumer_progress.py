"""The consumer's lag and progress gauges, which the StoplineConsumerStalled alert reads: a handler stuck on
its batch leaves the partition's progress where it was while the lag counts the records piling up behind
it; released, both move again. A consumer read to the end keeps making progress (idle is not stalled),
and a transaction's commit marker, which no consumer receives, is not lag."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from streams.consumer import Batch, ConsumerRunner
from streams.producer import Producer, Record
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import eventually, new_topic
from tests.streams.test_consumer import _committed, _produce, _record, _runner

pytestmark = pytest.mark.integration


def _gauge(name: str, runner: ConsumerRunner, tp: TopicPartition) -> float | None:
    labels = {"group": runner.group_id, "topic": tp.topic, "partition": str(tp.partition)}
    return REGISTRY.get_sample_value(name, labels)


def _lag(runner: ConsumerRunner, tp: TopicPartition) -> float | None:
    return _gauge("stopline_consumer_lag", runner, tp)


def _progress(runner: ConsumerRunner, tp: TopicPartition) -> float | None:
    return _gauge("stopline_consumer_progress_timestamp_seconds", runner, tp)


async def test_a_stuck_handler_makes_no_progress_and_the_records_behind_it_show_as_lag(infra: Infra):
    topic = await new_topic(infra, f"{infra.prefix}progress-{f.unique('t')}")
    tp = TopicPartition(topic, 0)
    barrier, entered = asyncio.Event(), asyncio.Event()
    seen: list[bytes] = []

    async def stuck(batch: Batch) -> None:
        entered.set()
        await barrier.wait()  # a dependency that does not answer, for as long as the test says
        await _record(seen, batch)

    runner = _runner(infra, topic, f.unique("g"), stuck)
    runner.stall_watch_s = 0.5  # (5 s in a service: a test need not wait that long for each look)
    task = asyncio.create_task(runner.run())
    try:
        await _produce(infra, topic, [b"first"], partitions=1)
        await asyncio.wait_for(entered.wait(), 20)
        stalled_at = time.time()
        before = _progress(runner, tp)  # given the partition, or found it read to its end, before
        assert before is not None and before <= stalled_at
        behind = [f"behind-{i}".encode() for i in range(20)]
        await _produce(infra, topic, behind, partitions=1)
        # The batch in hand and every record behind it, although the consumer's own fetches stopped
        # telling (it holds fetched records nobody takes): the watcher asked Kafka for the end.
        await eventually(lambda: _lag(runner, tp) == 1 + len(behind), timeout_s=20)
        assert _progress(runner, tp) == before
        # More behind it, counted at a later look of the watcher: the lag keeps growing, and the progress
        # stays as old as the stall (what the alert reads: records waiting, and no progress since).
        later = [f"later-{i}".encode() for i in range(5)]
        await _produce(infra, topic, later, partitions=1)
        await eventually(lambda: _lag(runner, tp) == 1 + len(behind) + len(later), timeout_s=20)
        assert _progress(runner, tp) == before
        assert not seen
        assert runner.readiness() == "ok"  # a stuck handler is no outage: only these gauges tell

        barrier.set()
        await eventually(
            lambda: _lag(runner, tp) == 0 and (_progress(runner, tp) or 0) > stalled_at, timeout_s=20
        )
        assert seen == [b"first", *behind, *later]

        async def all_committed() -> bool:
            return await _committed(infra, topic, runner.group_id) == len(seen)

        await eventually(all_committed, timeout_s=10)
    finally:
        barrier.set()
        runner.stop()
        await asyncio.wait_for(task, 20)


async def test_a_consumer_read_to_the_end_keeps_making_progress_and_a_commit_marker_is_no_lag(infra: Infra):
    topic = await new_topic(infra, f"{infra.prefix}progress-{f.unique('t')}")
    tp = TopicPartition(topic, 0)
    producer = Producer(
        infra.kafka, client_id="progress-test", transactional_id=f"{infra.prefix}{f.unique('x')}"
    )
    await producer.start()
    try:
        await asyncio.wait_for(await producer.transact([Record(topic, b"a"), Record(topic, b"b")]), 20)
    finally:
        await producer.stop()
    seen: list[bytes] = []
    runner = _runner(infra, topic, f.unique("g"), lambda batch: _record(seen, batch))
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: len(seen) == 2, timeout_s=20)
        read_at = time.time()
        # Nothing more comes: the loop finds the partition at its end again and again, each a progress.
        await eventually(lambda: (_progress(runner, tp) or 0) > read_at + 1, timeout_s=10)
        assert _lag(runner, tp) == 0
        assert runner.consumer.highwater(tp) == len(seen) + 1  # the commit marker, one past the records
    finally:
        runner.stop()
        await asyncio.wait_for(task, 20)
