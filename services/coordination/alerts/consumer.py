"""Consumes the alerts topic into PostgreSQL; the offset is committed after the rows are. An alert that
cannot be stored (invalid, or failing alone at every attempt) is set aside on the dead-letter topic, and
the offset committed once Kafka has it: one bad alert does not keep every later one from the police."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import metrics
from services.coordination.alerts import service
from services.kit import outages
from services.kit.db import unit_of_work
from services.kit.settings import CommonSettings
from streams import acls, groups, topics
from streams.connection import connection
from streams.consumer import Batch, ConsumerRunner, Landing
from streams.dead_letter import DeadLetters
from streams.schemas.decode import decode_alerts

log = logging.getLogger(__name__)
GROUP = groups.COORDINATION_ALERTS


def build_runner(common: CommonSettings, sessions: async_sessionmaker[AsyncSession]) -> ConsumerRunner:
    kafka = connection(common, acls.COORDINATION)
    group = f"{common.topic_prefix}{GROUP}"
    dead_letters = DeadLetters(
        kafka,
        client_id="stopline-coordination-alerts",
        group=group,
        prefix=common.topic_prefix,
        counted=metrics.DEAD_LETTERS,
        log=log,
        what="alert",
    )

    async def handle(batch: Batch) -> Landing:
        alerts, invalid = decode_alerts(batch)
        async with unit_of_work(sessions) as session:
            stored = await service.store(session, alerts=alerts)
        for alert in alerts:
            metrics.ALERTS_RECEIVED.labels(alert.typology).inc()
        metrics.ALERTS_STORED.inc(stored.new)
        metrics.ALERTS_UPDATED.inc(stored.updated)
        return await dead_letters.invalid(invalid)

    return ConsumerRunner(
        kafka=kafka,
        group_id=group,
        topics=[topics.name(topics.ALERTS, common.topic_prefix)],
        handle=handle,
        attempts=5,  # storing is idempotent by alert id, so a retried batch is safe
        retry_while=outages.unavailable,  # a database or Kafka outage: until it is over
        set_aside=dead_letters.set_aside,  # anything else (an alerts consumer's: see DeadLetters)
        producer=dead_letters.producer,
    )
