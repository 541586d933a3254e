"""Where simulated events go: the ingest API over HTTP (per-institution keys) or Kafka directly."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
import orjson

from services.kit.errors import Unavailable
from services.kit.logging import log_fields
from services.simulator.model import INSTITUTIONS, SimEvent
from streams import keys, topics
from streams.connection import KafkaConnection
from streams.producer import Producer, Record
from streams.schemas.events import envelope_adapter

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 502, 503, 504}  # the ingest API says "try again" (503: Kafka or DB unavailable)


@dataclass(frozen=True, slots=True)
class SendResult:
    acked: int  # accepted, plus duplicates (an earlier attempt of ours that timed out may have landed)
    duplicates: int
    error: str | None  # None, "http_4xx", "http_5xx", "unavailable"
    sent_at: float  # monotonic time the first attempt started
    latency_s: float  # first attempt start to final answer, retries included
    attempts: int
    status: int | None = None


class MissingKeys(Exception):
    """The HTTP sink has no API key for some institution."""


class Sink(Protocol):
    async def start(self) -> None: ...

    async def send(self, institution: str, events: Sequence[SimEvent]) -> SendResult: ...

    async def close(self) -> None: ...


def backoff(attempt: int) -> float:
    # Jitter spreads the retries of concurrent posters so they do not hit a recovering API together.
    return float(min(0.2 * 2**attempt, 5.0) * random.uniform(0.5, 1.0))


class HttpSink:
    def __init__(
        self,
        base_url: str,
        api_keys: Mapping[str, str],
        *,
        timeout_s: float = 10.0,
        attempts: int = 5,
        connections: int = 16,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_keys = dict(api_keys)
        self.attempts = attempts
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def start(self) -> None:
        missing = sorted(set(INSTITUTIONS) - set(self.api_keys))
        if missing:
            raise MissingKeys(f"no API key for {', '.join(missing)}; run with --provision")

    async def send(self, institution: str, events: Sequence[SimEvent]) -> SendResult:
        body = orjson.dumps({"events": [e.body for e in events]})
        headers = {
            "Authorization": f"Bearer {self.api_keys[institution]}",
            "Content-Type": "application/json",
        }
        began = time.monotonic()
        status: int | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._client.post("/v1/events", content=body, headers=headers)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}"
            else:
                status = response.status_code
                if status == 200:
                    doc = response.json()
                    dup = len(doc.get("duplicates", []))
                    return SendResult(
                        doc["accepted"] + dup, dup, None, began, time.monotonic() - began, attempt, status
                    )
                if status not in RETRY_STATUS:
                    return self._failed(institution, response, began, attempt)
                reason = f"http {status}"
            if attempt < self.attempts:
                await asyncio.sleep(backoff(attempt))
        log.warning(
            "batch not delivered after retries",
            extra=log_fields(
                institution=institution, events=len(events), attempts=self.attempts, last=reason
            ),
        )
        return SendResult(0, 0, "unavailable", began, time.monotonic() - began, self.attempts, status)

    def _failed(self, institution: str, response: httpx.Response, began: float, attempt: int) -> SendResult:
        # A 4xx means the simulator built a bad batch or holds a bad key: a bug to see, not to retry.
        # Only the error code and message are logged; problem details may quote event fields.
        try:
            doc = response.json()
            code, message = (
                doc.get("code") or doc.get("error"),
                str(doc.get("message") or doc.get("detail"))[:200],
            )
        except ValueError:
            code, message = None, response.text[:200]
        kind = "http_4xx" if response.status_code < 500 else "http_5xx"
        log.error(
            "batch rejected",
            extra=log_fields(
                institution=institution, status=response.status_code, code=code, message=message
            ),
        )
        return SendResult(0, 0, kind, began, time.monotonic() - began, attempt, response.status_code)

    async def close(self) -> None:
        await self._client.aclose()


class KafkaSink:
    """Produces envelopes as an institution connected to Kafka would: as its own principal, to its own
    intake topic (ingest checks and forwards them), `received_at` null, keyed by person."""

    def __init__(
        self,
        kafka: KafkaConnection,
        institutions: Sequence[str],
        *,
        topic_prefix: str = "",
        attempts: int = 5,
        timeout_s: float = 10.0,
    ) -> None:
        self.producers = {
            i: Producer(kafka.as_principal(i), client_id=f"simulator-{i}", timeout_s=timeout_s)
            for i in institutions
        }
        self.topic_prefix = topic_prefix
        self.attempts = attempts

    async def start(self) -> None:
        for producer in self.producers.values():
            await producer.start()

    def _record(self, institution: str, event: SimEvent) -> Record:
        envelope = {"institution": institution, "received_at": None, "event": event.body}
        # Nothing validates between here and the scorer, so check every event against the schema first.
        envelope_adapter.validate_python(envelope)
        return Record(
            topic=topics.name(topics.intake_for(institution), self.topic_prefix),
            key=keys.person_key(event.person_phone),
            value=orjson.dumps(envelope),
        )

    async def send(self, institution: str, events: Sequence[SimEvent]) -> SendResult:
        records = [self._record(institution, e) for e in events]
        began = time.monotonic()
        for attempt in range(1, self.attempts + 1):
            try:
                await self.producers[institution].send_all(records)
            except Unavailable as exc:
                if attempt == self.attempts:
                    log.warning("batch not produced after retries", extra=log_fields(reason=exc.message))
                    return SendResult(0, 0, "unavailable", began, time.monotonic() - began, attempt)
                await asyncio.sleep(backoff(attempt))
            else:
                return SendResult(len(records), 0, None, began, time.monotonic() - began, attempt)
        raise AssertionError("unreachable: the last attempt returns")

    async def close(self) -> None:
        for producer in self.producers.values():
            await producer.stop()
