"""Settling records in doubt: were they written or not? Read back from Kafka itself.

A produce that the client gave up on, or whose sender died, may still have been written (the broker
wrote it and could not answer). Before such work is sent again, or forgotten, the topic is read from
shortly before the first attempt to its end and the records are looked for by their ids. Settle only
when nothing of the first attempt can still be in flight (its producer gave up, its process is gone, or
its transactional producer was fenced): what the partitions hold then is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError
from aiokafka.partitioner import DefaultPartitioner

from streams.bootstrap import start_through_any_node
from streams.connection import KafkaConnection

# Record timestamps are the producer's clock when it was handed the record: read from a little earlier.
CLOCK_MARGIN_S = 5.0

# An id of a record (or None if it is not one of ours); its value and headers are given.
Identify = Callable[[ConsumerRecord], str | None]


async def landed(
    kafka: KafkaConnection,
    topic: str,
    *,
    since: datetime,
    identify: Identify,
    wanted: Iterable[str],
    keys: Iterable[bytes] | None = None,
    timeout_s: float = 30.0,
) -> set[str]:
    """Which of the `wanted` ids are on the topic in records written since `since` (a little before the
    first attempt). With `keys`, only the partitions those keys go to are read; else all of them. Its
    clients start through any node that answers, both within `timeout_s`. LookupError: no such topic
    (nothing is on it); TopicAuthorizationFailedError: one this principal may not see."""
    wanted = set(wanted)
    if not wanted:
        return set()
    # Read committed: a record of an aborted transaction (the outbox relay's) is not there. Up to the end
    # of the partition, not to its last stable offset: a transaction still open when we look (another
    # relay's) is waited out, so a committed record after it is seen.
    async with contextlib.AsyncExitStack() as started:
        # Each started within half the time, through any node that answers (one that does not is given
        # half of that).
        consumer = await _started(kafka, timeout_s / 2, isolation_level="read_committed")
        started.push_async_callback(consumer.stop)
        # Where to read from and to: every record counts, committed or not.
        offsets = await _started(kafka, timeout_s / 2)
        started.push_async_callback(offsets.stop)
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            # First use of the topic here. Asked for by name, not in a list of every topic: one this
            # principal may not see is refused by name, and only one that does not exist is missing.
            await consumer._client.add_topic(topic)  # noqa: SLF001
            partitions = consumer.partitions_for_topic(topic)
        if topic in consumer._client.cluster.unauthorized_topics:  # noqa: SLF001
            raise TopicAuthorizationFailedError(topic)
        if not partitions:
            raise LookupError(f"no topic {topic} in the cluster")
        ordered = sorted(partitions)
        if keys is not None:
            chosen = {DefaultPartitioner()(k, ordered, ordered) for k in keys}
        else:
            chosen = set(ordered)
        parts = [TopicPartition(topic, p) for p in sorted(chosen)]
        consumer.assign(parts)
        since_ms = int((since.timestamp() - CLOCK_MARGIN_S) * 1000)
        starts = await asyncio.wait_for(offsets.offsets_for_times(dict.fromkeys(parts, since_ms)), timeout_s)
        ends = await asyncio.wait_for(offsets.end_offsets(parts), timeout_s)
        todo = {}
        for tp in parts:
            found = starts.get(tp)
            if found is not None and found.offset < ends[tp]:
                consumer.seek(tp, found.offset)
                todo[tp] = ends[tp]
        seen: set[str] = set()
        deadline = time.monotonic() + timeout_s
        while todo and wanted - seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} back within {timeout_s}s")
            batch = await consumer.getmany(*todo, timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if (ident := identify(record)) is not None:
                        seen.add(ident)
            for tp in list(todo):
                if await consumer.position(tp) >= todo[tp]:
                    del todo[tp]
        return seen & wanted


async def _started(kafka: KafkaConnection, timeout_s: float, **options: Any) -> AIOKafkaConsumer:
    """A consumer outside any group, started within `timeout_s` (`streams.bootstrap`)."""
    return await start_through_any_node(
        lambda common: AIOKafkaConsumer(**common, group_id=None, enable_auto_commit=False, **options),
        kafka.options(),
        attempt_s=timeout_s / 2,
        total_s=timeout_s,
    )
