"""Consumes the alerts topic into PostgreSQL; the offset is committed after the rows are."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import metrics
from services.coordination.alerts import service
from services.kit import outages
from services.kit.db import unit_of_work
from services.kit.settings import CommonSettings
from streams import acls, topics
from streams.connection import connection
from streams.consumer import Batch, ConsumerRunner
from streams.schemas.decode import decode_alerts

log = logging.getLogger(__name__)
GROUP = "coordination-alerts"


def build_runner(common: CommonSettings, sessions: async_sessionmaker[AsyncSession]) -> ConsumerRunner:
    async def handle(batch: Batch) -> None:
        alerts, invalid = decode_alerts(batch)
        metrics.ALERTS_INVALID.inc(len(invalid))
        async with unit_of_work(sessions) as session:
            stored = await service.store(session, alerts=alerts)
        for alert in alerts:
            metrics.ALERTS_RECEIVED.labels(alert.typology).inc()
        metrics.ALERTS_STORED.inc(stored.new)
        metrics.ALERTS_UPDATED.inc(stored.updated)

    return ConsumerRunner(
        kafka=connection(common, acls.COORDINATION),
        group_id=f"{common.topic_prefix}{GROUP}",
        topics=[topics.name(topics.ALERTS, common.topic_prefix)],
        handle=handle,
        attempts=5,  # storing is idempotent by alert id, so a retried batch is safe
        retry_while=outages.unavailable,  # a database or Kafka outage: until it is over
    )
