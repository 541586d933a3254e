"""Dead-lettering: a message that cannot be used is set aside with its reason, not retried forever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import ConsumerRecord
from aiokafka.structs import RecordMetadata
from prometheus_client import Counter
from pydantic import ValidationError

from services.kit.logging import log_fields
from services.kit.outages import innermost
from streams import topics
from streams.connection import KafkaConnection
from streams.consumer import Landing
from streams.producer import Producer, Record

# What is kept of a record too large to set aside whole (with a compressed batch the broker takes a record
# larger than a request may be): a dead letter the producer refuses would stop its consumer on every read.
KEPT_BYTES = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class Letter(Record):
    """A record for the dead-letter topic, its reason kept to count it by once Kafka has it."""

    reason: str


def dead_letter_record(
    record: ConsumerRecord, *, reason: str, detail: str, prefix: str, consumer: str
) -> Letter:
    """The original bytes, untouched, with where they came from, which consumer (its group id) refused them
    and why; of a record too large for a request, its first `KEPT_BYTES` and its size (`truncated-from`).
    The consumer tells apart the letters of two groups reading the same topic (an invalid alert is set aside
    by coordination's and by the notifier's: police without the alert, or a citizen not warned)."""
    value = record.value or b""
    headers = [
        ("reason", reason.encode()),
        ("consumer", consumer.encode()),
        ("detail", detail[:1000].encode()),
        ("source.topic", record.topic.encode()),
        ("source.partition", str(record.partition).encode()),
        ("source.offset", str(record.offset).encode()),
    ]
    if record.value is None:
        # A record with no value at all (a tombstone) is set aside with an empty one, which a reader could
        # not tell from an empty value; and a letter with none would delete its key's letters if the
        # topic were ever compacted.
        headers.append(("tombstone", b"true"))
    letter = Letter(
        topic=topics.name(topics.DEAD_LETTER, prefix),
        key=record.key,
        value=value,
        headers=headers,
        reason=reason,
    )
    if Producer.fits(letter):
        return letter
    kept = [*headers, ("truncated-from", str(len(value)).encode())]
    key = record.key[:KEPT_BYTES] if record.key is not None else None
    return Letter(topic=letter.topic, key=key, value=value[:KEPT_BYTES], headers=kept, reason=reason)


async def hand_over(
    producer: Producer, records: Sequence[Record], counted: Counter
) -> asyncio.Future[list[RecordMetadata]]:
    """`producer.enqueue(records)`, the letters among them counted by reason in `counted` once Kafka has
    acknowledged them: a letter Kafka refused was not set aside, and a batch retried after a failed landing
    hands its letters over again."""
    landing = await producer.enqueue(records)
    reasons = [r.reason for r in records if isinstance(r, Letter)]
    if reasons:
        landing.add_done_callback(lambda done: _count_landed(done, counted, reasons))
    return landing


def _count_landed(
    landing: asyncio.Future[list[RecordMetadata]], counted: Counter, reasons: list[str]
) -> None:
    if not landing.cancelled() and landing.exception() is None:
        for reason in reasons:
            counted.labels(reason).inc()


class DeadLetters:
    """A consumer's way of setting records aside on the dead-letter topic: those its handler found invalid
    (`invalid`), and one it fails on alone at every attempt (`set_aside`, the runner's), each counted by
    reason in `counted` once Kafka has it, and signed with the consumer's `group` id. Its `producer` is for
    the runner to start and stop (`ConsumerRunner(producer=...)`); `log` and `what` make the consumer's line
    ("alert set aside").

    For the alerts consumers (coordination's, the notifier's): an alert is set aside once it fails alone at
    every attempt on anything but an outage. Its key is its subject (the person, else the account), which
    every revision keeps: a next alert failing so under that key is the same poison (a later revision, whose
    merged payments fail as the first's did), set aside too; under another key it is a condition failing
    every alert, and the consumer stops (`ConsumerRunner._one`). The producer starts with the consumer, in
    its task: without Kafka the API still answers a direct request, but is not ready (no partitions held)
    and, once the start gives up, not live either."""

    def __init__(
        self,
        kafka: KafkaConnection,
        *,
        client_id: str,
        group: str,
        prefix: str,
        counted: Counter,
        log: logging.Logger,
        what: str,
    ) -> None:
        self.producer = Producer(kafka, client_id=client_id)
        self.group = group
        self.prefix = prefix
        self.counted = counted
        self.log = log
        self.what = what

    async def invalid(self, invalid: Sequence[tuple[ConsumerRecord, str]]) -> Landing:
        """Hand the letters of the records (record, what is wrong) to Kafka: the runner commits once it has
        them."""
        return await self._hand_over([(record, "invalid", detail) for record, detail in invalid])

    async def set_aside(self, record: ConsumerRecord, exc: Exception) -> Landing:
        # The type of what failed only in the letter (the driver's error, not the library's wrapper), and no
        # message in the log: a message may hold personal data (a phone number in a refused row).
        failed = type(innermost(exc)).__name__
        landing = await self._hand_over([(record, "unhandled", failed)])
        # Its traceback as the JSON formatter writes it: where it was raised and the types, no message.
        self.log.error(
            f"{self.what} set aside: it failed alone at every attempt",
            exc_info=exc,
            extra=log_fields(
                topic=record.topic, partition=record.partition, offset=record.offset, error=failed
            ),
        )
        return landing

    async def _hand_over(self, letters: Sequence[tuple[ConsumerRecord, str, str]]) -> Landing:
        if not letters:
            return None
        return await hand_over(
            self.producer,
            [
                dead_letter_record(r, reason=reason, detail=detail, prefix=self.prefix, consumer=self.group)
                for r, reason, detail in letters
            ],
            self.counted,
        )


def describe(exc: ValidationError) -> str:
    """`field: reason; ...` from a pydantic error."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
