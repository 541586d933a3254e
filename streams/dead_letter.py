"""Dead-lettering: a message that cannot be used is set aside with its reason, not retried forever."""

from __future__ import annotations

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from streams import topics
from streams.producer import Record


def dead_letter_record(record: ConsumerRecord, *, reason: str, detail: str, prefix: str) -> Record:
    """The original bytes, untouched, with where they came from and why they were refused."""
    return Record(
        topic=topics.name(topics.DEAD_LETTER, prefix),
        key=record.key,
        value=record.value or b"",
        headers=[
            ("reason", reason.encode()),
            ("detail", detail[:1000].encode()),
            ("source.topic", record.topic.encode()),
            ("source.partition", str(record.partition).encode()),
            ("source.offset", str(record.offset).encode()),
        ],
    )


def describe(exc: ValidationError) -> str:
    """`field: reason; ...` from a pydantic error."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
