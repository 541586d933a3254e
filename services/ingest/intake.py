"""Events institutions produce straight to Kafka, each on its own `intake.<institution>` topic (only its
principal may write there, see streams.acls): checked as a posted event is, de-duplicated in the same
ledger, and forwarded to the event topic of the institution's kind, so the scorer reads only what ingest
has checked. The sender is the topic's institution, never the envelope's: an envelope naming another
institution, an event of a kind the institution may not send, or an invalid event goes to the
dead-letter topic with its reason, as does an event whose id was accepted before for other content (an
earlier record of the same batch included: its records are claimed in order). Offsets are committed once
the forwarded events are acknowledged and their ledger rows committed; a batch read again finds its events
in the ledger and sends nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest import metrics, service
from services.ingest.claims import Claims
from services.institutions.credentials import Caller
from services.institutions.directory import Directory
from services.institutions.models import Institution
from services.kit import outages
from services.kit.errors import InvalidInput
from services.kit.settings import CommonSettings
from streams import acls, groups, topics
from streams.connection import connection
from streams.consumer import Batch, ConsumerRunner, Landing
from streams.dead_letter import dead_letter_record
from streams.producer import Producer, Record
from streams.schemas.events import EventBase

log = logging.getLogger(__name__)
GROUP = groups.INGEST_INTAKE
FAMILY = topics.intake_for("")


class Intake:
    def __init__(
        self,
        common: CommonSettings,
        sessions: async_sessionmaker[AsyncSession],
        producer: Producer,
        claims: Claims,
        directory: Directory,
    ) -> None:
        self.prefix = common.topic_prefix
        self.group = f"{self.prefix}{GROUP}"
        self.bounds = common.event_time_bounds()  # the same bounds as posted events
        self.sessions = sessions
        self.producer = producer
        self.claims = claims
        self.directory = directory
        self._kinds: dict[str, str] = {}  # institution → kind (an institution's kind never changes)
        self.runner = ConsumerRunner(
            kafka=connection(common, acls.INGEST),
            group_id=self.group,
            pattern=topics.family_pattern(FAMILY, self.prefix),
            handle=self.handle,
            attempts=5,  # the ledger makes a repeated batch send nothing twice
            retry_while=outages.unavailable,  # a database or Kafka outage: until it is over
            # Its batch waits as long as Kafka takes to acknowledge the events (`handle`): not a stuck
            # handler, and a restart would only read the batch again and wait the same.
            bounded=False,
        )

    async def _kind(self, institution: str) -> str | None:
        if institution not in self._kinds:
            async with self.sessions() as session:
                found = await session.get(Institution, institution)
            if found is None:
                return None
            self._kinds[institution] = found.kind
        return self._kinds[institution]

    async def handle(self, batch: Batch) -> Landing:
        refused: list[Record] = []
        accepted: dict[str, dict[str, list[tuple[EventBase, ConsumerRecord]]]] = {}  # sender → id → in order
        for tp, records in batch.items():
            sender = topics.institution_of(tp.topic, FAMILY, self.prefix) or ""
            kind = await self._kind(sender)
            for record in records:
                event, reason, detail = self._check(record.value or b"", sender, kind)
                if event is None:
                    metrics.REJECTED.labels(kind or "unknown", reason).inc()
                    refused.append(
                        dead_letter_record(
                            record, reason=reason, detail=detail, prefix=self.prefix, consumer=self.group
                        )
                    )
                    continue
                accepted.setdefault(sender, {}).setdefault(event.event_id, []).append((event, record))
        for sender, by_id in accepted.items():
            # Waits as long as Kafka takes: the offsets are committed only once the events are accepted.
            caller = Caller(institution_id=sender, kind=self._kinds[sender])
            while by_id:  # a round per repeat of an id, so the ledger judges each (a repeat or a conflict)
                heads = {event_id: records.pop(0) for event_id, records in by_id.items()}
                events = [e for e, _ in heads.values()]
                unknown = await service.unknown_payees(self.directory, events)
                result = await self.claims.accept(caller=caller, events=events, answer_within_s=None)
                service.count_unknown_payees(caller, events, unknown, result)
                for event_id, head in heads.items():
                    if event_id in result.conflicts:  # refused alone: the others are claimed again
                        refused.append(self._reused(head[1], caller.kind))
                    elif result.conflicts:
                        by_id[event_id].insert(0, head)
                by_id = {event_id: records for event_id, records in by_id.items() if records}
        # Not waited for here: a wait that timed out would have the batch retried and its letters sent again.
        # The runner commits once Kafka has them (and stops if the producer gives them up).
        return await self.producer.enqueue(refused) if refused else None

    def _reused(self, record: ConsumerRecord, kind: str) -> Record:
        """The dead letter of an event whose id was accepted before for other content (the API's 409)."""
        metrics.REJECTED.labels(kind, "conflict").inc()
        return dead_letter_record(
            record, reason="conflict", detail=service.REUSED_ID, prefix=self.prefix, consumer=self.group
        )

    def _check(self, value: bytes, sender: str, kind: str | None) -> tuple[EventBase | None, str, str]:
        """(the event, "", "") or (None, reason, detail)."""
        if kind is None:
            return None, "unknown_institution", f"no institution {sender!r}"
        try:
            doc: Any = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return None, "invalid", f"not JSON: {exc}"
        if not isinstance(doc, dict) or set(doc) - {"institution", "received_at", "event"}:
            return None, "invalid", "not an envelope {institution, received_at, event}"
        if doc.get("institution") != sender:
            return (
                None,
                "wrong_sender",
                f"the envelope names {doc.get('institution')!r}; the topic is {sender}'s",
            )
        try:
            (event,) = service.validate_events([doc.get("event")], bounds=self.bounds)
        except InvalidInput as exc:
            return None, "invalid", orjson.dumps(exc.details).decode()
        if event.source != kind:
            return None, "forbidden_kind", f"a {kind} may not send {event.type}"
        return event, "", ""
