"""Consumes institutions' answers from their `instruction-responses.<institution>` topics; the offset is
committed after each answer is applied (or refused). A message naming an instruction that is not
addressed to the sender, or an illegal transition, is refused and counted: it must not stop the partition.
Its sender is told, once per refused record, by an `answer_refused` notice on its instruction topic
(`refusals`), as an answer refused on the API is told by the call's 4xx.

The sender is the topic's institution: only its principal may write there (streams.acls). An answer whose
body names another institution is refused, whatever the instruction.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import metrics
from services.coordination.instructions import answers, refusals
from services.coordination.instructions.refusals import Refused
from services.coordination.instructions.service import Context
from services.kit import outages
from services.kit.db import unit_of_work
from services.kit.errors import DomainError
from services.kit.inputs import body_problems
from services.kit.logging import log_fields
from services.kit.settings import CommonSettings
from streams import acls, groups, topics
from streams.connection import connection
from streams.consumer import Batch, ConsumerRunner
from streams.schemas.instructions import response_adapter

log = logging.getLogger(__name__)
GROUP = groups.COORDINATION_RESPONSES
# The metric label of a record on a topic of the family that names no institution the prefix knows.
UNNAMED = "unknown"


def build_runner(
    common: CommonSettings, sessions: async_sessionmaker[AsyncSession], ctx: Context
) -> ConsumerRunner:
    family = topics.responses_from("")

    async def handle(batch: Batch) -> None:
        for tp, records in batch.items():
            sender = topics.institution_of(tp.topic, family, common.topic_prefix)
            for record in records:
                refused = await _apply(sessions, ctx, record, sender)
                if refused is None or sender is None:
                    continue
                # In a transaction of its own: the refused answer's rolled back. A batch handled again
                # refuses the record again, and its notice, queued before, is not queued twice.
                async with unit_of_work(sessions) as session:
                    told = await refusals.tell(
                        session, record=record, sender=sender, refused=refused, topic_prefix=ctx.topic_prefix
                    )
                metrics.REFUSALS_TOLD.labels(told).inc()
                if told == "no_channel":
                    log.warning(
                        "refused answer not told: its institution has no delivery channel",
                        extra=log_fields(institution=sender, offset=record.offset),
                    )

    return ConsumerRunner(
        kafka=connection(common, acls.COORDINATION),
        group_id=f"{common.topic_prefix}{GROUP}",
        pattern=topics.family_pattern(family, common.topic_prefix),
        handle=handle,
        attempts=5,  # answers are idempotent by response id, and refusal notices by record: a retry is safe
        # A transaction per answer (one refused must not undo the others), and a rebalance waits for the
        # batch in hand (up to 1,000 answers of a backlog after an outage held the group for 23 s).
        max_records=50,
        retry_while=outages.unavailable,  # a database or Kafka outage: until it is over
    )


async def _apply(
    sessions: async_sessionmaker[AsyncSession], ctx: Context, record: ConsumerRecord, sender: str | None
) -> Refused | None:
    """Apply the record's answer in a transaction of its own; what refused it, if it was."""
    refused = metrics.RESPONSES_REFUSED.labels  # by the topic's institution, and the reason
    institution = sender or UNNAMED
    try:
        response = response_adapter.validate_json(record.value or b"")
    except ValidationError as exc:
        refused(institution, "invalid").inc()
        log.error(
            "invalid response skipped",
            extra=log_fields(offset=record.offset, errors=exc.error_count()),
        )
        return refusals.unreadable(exc, record.value or b"")
    if response.responded_at is None:
        # Undated: when Stopline reads it, as the API dates one when it is received. Not the record's
        # timestamp: that is the producer's clock (any value, even one no datetime holds).
        response = response.model_copy(update={"responded_at": datetime.now(UTC)})
    # The HTTP routes' edge rule too (on a body the schema took, so of bounded depth): a value the
    # database cannot store (a NUL, a date past 9999 in UTC) would fail every attempt and stop the
    # partition's answers.
    if unstorable := body_problems(record.value or b""):
        refused(institution, "invalid").inc()
        log.error(
            "unstorable response skipped",
            extra=log_fields(offset=record.offset, fields=[p["field"] for p in unstorable]),
        )
        return refusals.unstorable(unstorable, response)
    if response.institution_id != sender:
        refused(institution, "wrong_sender").inc()
        log.warning(
            "response naming another institution refused",
            extra=log_fields(
                instruction_id=str(response.instruction_id), sender=sender, named=response.institution_id
            ),
        )
        return refusals.wrong_sender(sender or "", response)
    try:
        async with unit_of_work(sessions) as session:
            await answers.answer(session, response=response, channel="kafka", ctx=ctx)
    except DomainError as exc:
        # The institution's mistake (wrong instruction, illegal move): recorded, not retried.
        refused(institution, exc.code).inc()
        log.warning(
            "response refused",
            extra=log_fields(
                instruction_id=str(response.instruction_id),
                institution=response.institution_id,
                reason=exc.message,
            ),
        )
        return Refused.of(exc, response)
    return None
