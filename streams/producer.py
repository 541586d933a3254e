"""The idempotent producer every service uses: acks from all replicas, bounded waits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from services.kit.errors import Unavailable
from streams.connection import KafkaConnection


@dataclass(frozen=True)
class Record:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp_ms: int | None = None
    partition: int | None = None  # None: the key's partition (murmur2, as every Kafka client by default)


class Producer:
    def __init__(
        self, kafka: KafkaConnection, *, client_id: str, timeout_s: float = 10.0, linger_ms: int = 0
    ) -> None:
        # No linger by default: every caller hands a whole batch over before it waits, so the records are
        # batched anyway, and lingering only added its milliseconds to each batch's acknowledgement.
        self.timeout_s = timeout_s
        self._options = {
            **kafka.options(),
            "client_id": client_id,
            "enable_idempotence": True,  # no duplicates from the producer's own retries
            "acks": "all",
            "linger_ms": linger_ms,
            "max_batch_size": 256 * 1024,
            "request_timeout_ms": int(timeout_s * 1000),
        }
        self._client: AIOKafkaProducer | None = None

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._client is None:
            raise RuntimeError("producer not started")
        return self._client

    async def start(self) -> None:
        # aiokafka binds to the running loop, so the client is made here, not in __init__.
        self._client = AIOKafkaProducer(**self._options)
        await asyncio.wait_for(self._client.start(), self.timeout_s)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.stop()

    async def send_all(self, records: Sequence[Record]) -> list[RecordMetadata]:
        """Send the records and wait until Kafka has acknowledged every one, or raise Unavailable."""
        return await (await self.enqueue(records))

    async def enqueue(self, records: Sequence[Record]) -> asyncio.Future[list[RecordMetadata]]:
        """Hand the records to the producer and return at once with a future of Kafka's acknowledgement of
        every one (failing with Unavailable), so the caller can go on meanwhile; keyed records keep their
        order per partition either way."""
        try:
            futures = [
                await self._producer.send(
                    r.topic,
                    r.value,
                    key=r.key,
                    partition=r.partition,
                    headers=r.headers or None,
                    timestamp_ms=r.timestamp_ms,
                )
                for r in records
            ]
        except Exception as exc:
            if _from_kafka(exc):
                raise _refused(exc) from exc
            raise
        return asyncio.ensure_future(self._acknowledged(futures))

    async def _acknowledged(self, futures: list[asyncio.Future[RecordMetadata]]) -> list[RecordMetadata]:
        try:
            return list(await asyncio.wait_for(asyncio.gather(*futures), self.timeout_s))
        except TimeoutError as exc:
            raise Unavailable("Kafka did not acknowledge in time") from exc
        except Exception as exc:
            if _from_kafka(exc):
                raise _refused(exc) from exc
            raise

    async def ping(self) -> str:
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2)
        except Exception as exc:  # noqa: BLE001 - health checks report
            return f"error: {type(exc).__name__}"
        return "ok"


def _from_kafka(exc: Exception) -> bool:
    return type(exc).__module__.startswith("aiokafka")


def _refused(exc: Exception) -> Unavailable:
    return Unavailable(f"Kafka refused the records: {type(exc).__name__}")
