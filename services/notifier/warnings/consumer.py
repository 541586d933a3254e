"""Consumes alerts; warnings and their queued messages are committed before the offset is."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit import outages
from services.kit.db import unit_of_work
from services.kit.sealing import Sealer
from services.kit.settings import CommonSettings
from services.notifier import metrics
from services.notifier.settings import NotifierSettings
from services.notifier.warnings import service
from streams import acls, topics
from streams.connection import connection
from streams.consumer import Batch, ConsumerRunner
from streams.schemas.decode import decode_alerts

log = logging.getLogger(__name__)
GROUP = "notifier-alerts"


def build_runner(
    common: CommonSettings,
    settings: NotifierSettings,
    sessions: async_sessionmaker[AsyncSession],
    sealer: Sealer,
    on_queued: Callable[[], None],
    bridge: service.CaseBridge,
) -> ConsumerRunner:
    async def handle(batch: Batch) -> None:
        alerts, invalid = decode_alerts(batch)
        metrics.DECISIONS.labels("invalid").inc(invalid)
        async with unit_of_work(sessions) as session:
            received = await service.receive(
                session, alerts=alerts, settings=settings, sealer=sealer, bridge=bridge, now=datetime.now(UTC)
            )
        if received.channels:
            on_queued()  # only after commit: the worker must find the rows

    return ConsumerRunner(
        kafka=connection(common, acls.NOTIFIER),
        group_id=f"{common.topic_prefix}{GROUP}",
        topics=[topics.name(topics.ALERTS, common.topic_prefix)],
        handle=handle,
        poll_timeout_ms=10,
        attempts=5,  # receiving is idempotent by alert id, so a retried batch is safe
        retry_while=outages.unavailable,  # a database or Kafka outage: until it is over
    )
