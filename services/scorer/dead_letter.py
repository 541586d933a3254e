"""The scorer's rule for event time: a record dated outside the bounds is dead-lettered."""

from __future__ import annotations

from datetime import datetime

from aiokafka import ConsumerRecord

from streams.dead_letter import Letter, dead_letter_record
from streams.schemas.event_time import EventTimeBounds


def untimely(
    record: ConsumerRecord,
    occurred_at: datetime,
    *,
    bounds: EventTimeBounds,
    now: float,
    prefix: str,
    consumer: str,
) -> Letter | None:
    """The dead letter of a record dated outside the event-time bounds, else None: every stage keeps the
    same rule, so no record's date can drag a partition's clock or park state beyond its horizon."""
    problem = bounds.problem(occurred_at, now=now)
    if problem is None:
        return None
    return dead_letter_record(
        record, reason="event_time", detail=f"occurred_at: {problem}", prefix=prefix, consumer=consumer
    )
