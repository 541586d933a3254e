"""Dead-lettering in the scorer: the shared record (streams.dead_letter), counted by reason."""

from __future__ import annotations

from datetime import datetime

from aiokafka import ConsumerRecord

from services.scorer import metrics
from streams.dead_letter import dead_letter_record, describe
from streams.producer import Record
from streams.schemas.event_time import EventTimeBounds

__all__ = ["dead_letter", "describe", "untimely"]


def dead_letter(record: ConsumerRecord, *, reason: str, detail: str, prefix: str) -> Record:
    metrics.DEAD_LETTERS.labels(reason).inc()
    return dead_letter_record(record, reason=reason, detail=detail, prefix=prefix)


def untimely(
    record: ConsumerRecord, occurred_at: datetime, *, bounds: EventTimeBounds, now: float, prefix: str
) -> Record | None:
    """The dead letter of a record dated outside the event-time bounds, else None: every stage keeps the
    same rule, so no record's date can drag a partition's clock or park state beyond its horizon."""
    problem = bounds.problem(occurred_at, now=now)
    if problem is None:
        return None
    return dead_letter(record, reason="event_time", detail=f"occurred_at: {problem}", prefix=prefix)
