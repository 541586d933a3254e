"""The runner's timing does not depend on what the monotonic clock reads: on Linux it is the time since
boot, so a machine booted a minute ago reads ~60 s, less than the intervals it is compared with."""

from __future__ import annotations

import time

import pytest
from aiokafka import TopicPartition

from streams.connection import KafkaConnection
from streams.consumer import ConsumerRunner

UNUSED = KafkaConnection("unused:9092", username="unused", password="unused")


async def _noop(batch: object) -> None:
    return None


@pytest.mark.parametrize("uptime_s", [0.5, 5.0, 300.0, 1e6])
def test_the_first_commit_is_due_at_once_whatever_the_clock_reads(monkeypatch, uptime_s):
    monkeypatch.setattr("streams.consumer.time.monotonic", lambda: uptime_s)
    runner = ConsumerRunner(
        kafka=UNUSED, group_id="g", topics=["t"], handle=_noop, commit_interval_ms=600_000
    )
    assert not runner._commit_due()  # nothing finished yet
    runner.finished[TopicPartition("t", 0)] = 1
    assert runner._commit_due()
    assert runner._quiet()  # no batch has come yet


def test_snapshots_of_a_partition_never_saved_are_due_whatever_the_clock_reads(monkeypatch):
    from tests.scorer.helpers import bookkeeping

    monkeypatch.setattr("services.scorer.snapshots.time.monotonic", lambda: 2.0)
    checkpoints = bookkeeping(interval_s=30.0)
    checkpoints.positions = {TopicPartition("t", 3): 10}
    assert checkpoints._half_due(time.monotonic()) == [3]
