"""Watches the alerts topic from its current end and notes when each alert arrived (benchmarks)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from services.kit.logging import log_fields
from streams.connection import KafkaConnection
from streams.schemas.alerts import alert_adapter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SeenAlert:
    arrived: float  # monotonic
    typology: str
    triggering_event_ids: tuple[str, ...]


class AlertWatcher:
    """Manual assignment without a group: reads every partition, commits nothing, disturbs no consumer."""

    def __init__(
        self, kafka: KafkaConnection, topic: str, *, partitions: int, timeout_s: float = 10.0
    ) -> None:
        self.topic = topic
        self.partitions = partitions
        self.timeout_s = timeout_s
        self.alerts: list[SeenAlert] = []
        self.invalid = 0
        self._consumer = AIOKafkaConsumer(
            **kafka.options(),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=20,
            request_timeout_ms=int(timeout_s * 1000),
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Position at the end of every partition before returning, so no older alert is counted."""
        await asyncio.wait_for(self._consumer.start(), self.timeout_s)
        if self.topic not in await asyncio.wait_for(self._consumer.topics(), self.timeout_s):
            await self._consumer.stop()
            raise RuntimeError(f"topic {self.topic} does not exist; is the stack up?")
        # The registry is the one place partition counts are decided (see streams.topics).
        assigned = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        self._consumer.assign(assigned)
        await asyncio.wait_for(self._consumer.seek_to_end(*assigned), self.timeout_s)
        for tp in assigned:
            # seek_to_end is lazy; asking the position fixes it now, before any traffic is sent.
            await asyncio.wait_for(self._consumer.position(tp), self.timeout_s)
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=50, max_records=1000)
            arrived = time.monotonic()
            for records in batch.values():
                for record in records:
                    try:
                        alert = alert_adapter.validate_json(record.value or b"")
                    except ValidationError:
                        self.invalid += 1
                        continue
                    self.alerts.append(SeenAlert(arrived, alert.typology, tuple(alert.triggering_event_ids)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass  # cancelled on purpose
        await self._consumer.stop()
        log.info("alert watcher stopped", extra=log_fields(alerts=len(self.alerts), invalid=self.invalid))
