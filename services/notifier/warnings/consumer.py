"""Consumes alerts; warnings and their queued messages are committed before the offset is. An alert that
cannot be handled (invalid, or failing alone at every attempt) is set aside on the dead-letter topic, and
the offset committed once Kafka has it: one bad alert does not stop the warnings of everyone after it."""

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
from streams import acls, groups, topics
from streams.connection import connection
from streams.consumer import Batch, ConsumerRunner, Landing
from streams.dead_letter import DeadLetters
from streams.schemas.decode import decode_alerts

log = logging.getLogger(__name__)
GROUP = groups.NOTIFIER_ALERTS


def build_runner(
    common: CommonSettings,
    settings: NotifierSettings,
    sessions: async_sessionmaker[AsyncSession],
    sealer: Sealer,
    on_queued: Callable[[], None],
    bridge: service.CaseBridge,
) -> ConsumerRunner:
    kafka = connection(common, acls.NOTIFIER)
    group = f"{common.topic_prefix}{GROUP}"
    dead_letters = DeadLetters(
        kafka,
        client_id="stopline-notifier",
        group=group,
        prefix=common.topic_prefix,
        counted=metrics.DEAD_LETTERS,
        log=log,
        what="alert",
    )

    async def handle(batch: Batch) -> Landing:
        alerts, invalid = decode_alerts(batch)
        async with unit_of_work(sessions) as session:
            received = await service.receive(
                session, alerts=alerts, settings=settings, sealer=sealer, bridge=bridge, now=datetime.now(UTC)
            )
        if received.channels:
            on_queued()  # only after commit: the worker must find the rows
        return await dead_letters.invalid(invalid)

    return ConsumerRunner(
        kafka=kafka,
        group_id=group,
        topics=[topics.name(topics.ALERTS, common.topic_prefix)],
        handle=handle,
        poll_timeout_ms=10,
        attempts=5,  # receiving is idempotent by alert id, so a retried batch is safe
        retry_while=outages.unavailable,  # a database or Kafka outage: until it is over
        set_aside=dead_letters.set_aside,  # anything else (an alerts consumer's: see DeadLetters)
        producer=dead_letters.producer,
    )
