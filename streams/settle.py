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
from aiokafka.errors import UnknownTopicOrPartitionError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.protocol.metadata import MetadataRequest

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
    clients start through any node that answers, both within `timeout_s`. NoSuchTopic: Kafka says the
    topic does not exist (nothing is on it); anything else raised leaves what is on it unknown."""
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
            await consumer._client.force_metadata_update()  # noqa: SLF001 - first use of the topic here
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise await _why_no_partitions(consumer, topic)
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


class NoSuchTopic(LookupError):
    """Kafka says the topic does not exist (asked by name): nothing is on it."""


async def _why_no_partitions(consumer: AIOKafkaConsumer, topic: str) -> LookupError:
    """Why the metadata lists no partitions of the topic, asked of a node by name and not to create it:
    NoSuchTopic only when Kafka answers that it does not exist. A topic this principal may not see, one
    with no leader yet, or a metadata request not answered (raised as it is) say nothing of its content."""
    client = consumer._client  # noqa: SLF001
    node = client.get_random_node()
    if node is None:
        return LookupError(f"no node to ask about {topic}")
    answer = await client.send(node, MetadataRequest([topic], allow_auto_topic_creation=False))
    codes = {t["topic"]: t["error_code"] for t in answer.to_object()["topics"]}
    if codes.get(topic) == UnknownTopicOrPartitionError.errno:
        return NoSuchTopic(f"no topic {topic} in the cluster")
    return LookupError(f"no partitions of {topic} known (error {codes.get(topic)})")
