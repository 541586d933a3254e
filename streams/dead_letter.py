"""Dead-lettering: a message that cannot be used is set aside with its reason, not retried forever."""

from __future__ import annotations

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from streams import topics
from streams.producer import Producer, Record

# What is kept of a record too large to set aside whole (with a compressed batch the broker takes a record
# larger than a request may be): a dead letter the producer refuses would stop its consumer on every read.
KEPT_BYTES = 64 * 1024


def dead_letter_record(record: ConsumerRecord, *, reason: str, detail: str, prefix: str) -> Record:
    """The original bytes, untouched, with where they came from and why they were refused; of a record
    too large for a request, its first `KEPT_BYTES` and its size (`truncated-from`)."""
    value = record.value or b""
    headers = [
        ("reason", reason.encode()),
        ("detail", detail[:1000].encode()),
        ("source.topic", record.topic.encode()),
        ("source.partition", str(record.partition).encode()),
        ("source.offset", str(record.offset).encode()),
    ]
    letter = Record(
        topic=topics.name(topics.DEAD_LETTER, prefix), key=record.key, value=value, headers=headers
    )
    if Producer.fits(letter):
        return letter
    kept = [*headers, ("truncated-from", str(len(value)).encode())]
    key = record.key[:KEPT_BYTES] if record.key is not None else None
    return Record(topic=letter.topic, key=key, value=value[:KEPT_BYTES], headers=kept)


def describe(exc: ValidationError) -> str:
    """`field: reason; ...` from a pydantic error."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
