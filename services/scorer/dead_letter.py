"""Dead-lettering in the scorer: the shared record (streams.dead_letter), counted by reason."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from services.scorer import metrics
from streams.dead_letter import dead_letter_record, describe
from streams.producer import Record

__all__ = ["dead_letter", "describe"]


def dead_letter(record: ConsumerRecord, *, reason: str, detail: str, prefix: str) -> Record:
    metrics.DEAD_LETTERS.labels(reason).inc()
    return dead_letter_record(record, reason=reason, detail=detail, prefix=prefix)
