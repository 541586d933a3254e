"""What a live run left on Kafka, read back for `deploy.live_check`: the alerts, and whether the scorer has
worked through everything it was sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.kit.settings import CommonSettings
from streams import acls, groups, topics
from streams.connection import connection
from streams.schemas.alerts import Alert, alert_adapter


async def read_topics(common: CommonSettings, wanted: Iterable[topics.Topic]) -> list[ConsumerRecord]:
    """Every record of these topics, from the beginning to the end they have now."""
    consumer = AIOKafkaConsumer(
        **connection(common, acls.ADMIN).options(), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(topics.name(t, common.topic_prefix), p)
            for t in wanted
            for p in range(t.partitions)
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[ConsumerRecord] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500, max_records=10_000), 60)
            for records in batch.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def read_alerts(common: CommonSettings) -> list[Alert]:
    return [alert_adapter.validate_json(r.value or b"") for r in await read_topics(common, [topics.ALERTS])]


async def caught_up(common: CommonSettings, *, timeout_s: float, settle_s: float = 5.0) -> bool:
    """Wait until both scorer stages have committed the end of every topic they read, twice `settle_s`
    apart (stage one reads the alerts stage two writes, so the end moves until both are still)."""
    prefix = common.topic_prefix
    stages = {
        f"{prefix}{groups.SCORER_EVENTS}": [*topics.EVENT_TOPICS.values(), topics.ALERTS],
        f"{prefix}{groups.SCORER_ACCOUNTS}": [topics.TRANSFERS_BY_ACCOUNT],
    }
    deadline = time.monotonic() + timeout_s
    still = 0
    while time.monotonic() < deadline:
        behind = 0
        for group, wanted in stages.items():
            parts = [TopicPartition(topics.name(t, prefix), p) for t in wanted for p in range(t.partitions)]
            consumer = AIOKafkaConsumer(
                **connection(common, acls.ADMIN).options(), group_id=group, enable_auto_commit=False
            )
            await consumer.start()
            try:
                ends = await consumer.end_offsets(parts)
                for tp in parts:
                    behind += ends[tp] - (await consumer.committed(tp) or 0)
            finally:
                await consumer.stop()
        still = still + 1 if behind == 0 else 0
        if still >= 2:
            return True
        await asyncio.sleep(settle_s)
    return False
