"""Consumes alerts; warnings and their queued messages are committed before the offset is. An alert that
cannot be handled (invalid, or failing alone at every attempt) is set aside on the dead-letter topic, and
the offset committed once Kafka has it: one bad alert does not stop the warnings of everyone after it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit import outages
from services.kit.db import unit_of_work
from services.kit.logging import log_fields
from services.kit.sealing import Sealer
from services.kit.settings import CommonSettings
from services.notifier import metrics
from services.notifier.settings import NotifierSettings
from services.notifier.warnings import service
from streams import acls, topics
from streams.connection import connection
from streams.consumer import Batch, ConsumerRunner, Landing
from streams.dead_letter import dead_letter_record, hand_over
from streams.producer import Producer
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
    producer: Producer,
) -> ConsumerRunner:
    async def dead_letters(letters: list[tuple[ConsumerRecord, str, str]]) -> Landing:
        """Hand the letters (record, reason, detail) to Kafka; the runner commits once it has them."""
        if not letters:
            return None
        return await hand_over(
            producer,
            [
                dead_letter_record(r, reason=reason, detail=detail, prefix=common.topic_prefix)
                for r, reason, detail in letters
            ],
            metrics.DEAD_LETTERS,
        )

    async def handle(batch: Batch) -> Landing:
        alerts, invalid = decode_alerts(batch)
        async with unit_of_work(sessions) as session:
            received = await service.receive(
                session, alerts=alerts, settings=settings, sealer=sealer, bridge=bridge, now=datetime.now(UTC)
            )
        if received.channels:
            on_queued()  # only after commit: the worker must find the rows
        return await dead_letters([(record, "invalid", detail) for record, detail in invalid])

    async def set_aside(record: ConsumerRecord, exc: Exception) -> Landing:
        # The exception's type only in the letter, and no message in the log: a message may hold personal
        # data (a phone number in a refused row, a case's victim).
        landing = await dead_letters([(record, "unhandled", type(exc).__name__)])
        # Its traceback as the JSON formatter writes it: where it was raised and the types, no message.
        log.error(
            "alert set aside: it failed alone at every attempt",
            exc_info=exc,
            extra=log_fields(
                topic=record.topic, partition=record.partition, offset=record.offset, error=type(exc).__name__
            ),
        )
        return landing

    return ConsumerRunner(
        kafka=connection(common, acls.NOTIFIER),
        group_id=f"{common.topic_prefix}{GROUP}",
        topics=[topics.name(topics.ALERTS, common.topic_prefix)],
        handle=handle,
        poll_timeout_ms=10,
        attempts=5,  # receiving is idempotent by alert id, so a retried batch is safe
        retry_while=outages.unavailable,  # a database or Kafka outage: until it is over
        set_aside=set_aside,  # anything else, once an alert fails alone at every attempt
    )
