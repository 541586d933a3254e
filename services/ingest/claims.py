"""Accepting each event once: the ledger's key (institution, event id) drops a repeated post, and a claim
on it is taken before the event is produced and settled by what Kafka says, never by a guess. That
makes the acceptance happen once by a key, not the delivery: downstream, the scorer still drops a
repeated record by its event id. The ledger also keeps a digest of each event's content: an id accepted
before for other content is a conflict, not a repeat (its new content would otherwise be dropped unseen),
and a batch with one is not claimed at all.

A batch's new ids are claimed, in doubt for a lease (`pending_until`), and committed before anything is
produced; a retry of the same events, on this instance or another, finds them claimed and waits for the
claim to settle, or is told they are in doubt (503 `in_doubt`, Retry-After), instead of sending them
again. Kafka's acknowledgement settles the claims as accepted; a refusal before anything was handed over
releases them (nothing can land). While a delivery runs, its lease is renewed (as the caller waits for
it, and after the answer if it runs past it); when the producer gives up on it, or the instance that
claimed them is gone (the lease ran out while the database answered), the topic is read back
(streams.settle) and each claim settled by it: accepted if its event is there, released if not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest import metrics, repository
from services.institutions.credentials import Caller
from services.institutions.models import Institution
from services.kit import outages
from services.kit.db import reach, unit_of_work
from services.kit.errors import InDoubt, Unavailable
from services.kit.logging import log_fields
from streams import keys, topics
from streams.connection import KafkaConnection
from streams.producer import DeliveryInDoubt, Producer, Record
from streams.schemas.events import EventBase
from streams.settle import Identify, landed

log = logging.getLogger(__name__)

LEASE_S = 30.0  # a claim in doubt is its instance's for this long, renewed while its delivery runs
SWEEP_S = 5.0  # how often lapsed claims are looked for
SWEEP_BATCH = 5000
IN_DOUBT = "these events were handed to Kafka and not acknowledged yet; retry to be told their outcome"


class ReadBackFailed(Exception):
    """A topic could not be read back: the lapsed claims on it stay in doubt until the next round."""

    def __init__(self, topic: str) -> None:
        super().__init__(topic)
        self.topic = topic


@dataclass(frozen=True)
class BatchResult:
    accepted: int
    duplicates: list[str]
    conflicts: list[str]  # ids accepted before for other content: if any, nothing of the batch was accepted


@dataclass(frozen=True)
class _Claim:
    caller: Caller
    topic: str
    received_at: datetime
    records: dict[str, Record]  # event id → record


class Claims:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        producer: Producer,
        kafka: KafkaConnection,
        *,
        topic_prefix: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self._clock = clock
        self._database_up_since: float | None = None  # since when every look of the sweeper reached it
        self.producer = producer
        self.kafka = kafka
        self.prefix = topic_prefix
        self._following: set[asyncio.Task[None]] = set()

    async def accept(
        self, *, caller: Caller, events: Sequence[EventBase], answer_within_s: float | None
    ) -> BatchResult:
        """Claim, produce and settle; within `answer_within_s` (None: however long it takes). Raises
        InDoubt when the outcome is not known by then (it is followed up), Unavailable when nothing was
        handed to Kafka (nothing was accepted). With conflicts, nothing is claimed nor counted: the caller
        refuses them (and the batch, or only them)."""
        deadline = None if answer_within_s is None else asyncio.get_running_loop().time() + answer_within_s
        ids = [e.event_id for e in events]
        claim, duplicates, conflicts = await self._claim(caller, events, deadline)
        if conflicts:
            return BatchResult(accepted=0, duplicates=[], conflicts=conflicts)
        if claim.records:
            await self._deliver(claim, deadline)
        metrics.INGESTED.labels(caller.kind).inc(len(claim.records))
        if duplicates:
            metrics.REJECTED.labels(caller.kind, "duplicate").inc(len(duplicates))
        assert len(claim.records) + len(duplicates) == len(ids)
        return BatchResult(accepted=len(claim.records), duplicates=duplicates, conflicts=[])

    async def _claim(
        self, caller: Caller, events: Sequence[EventBase], deadline: float | None
    ) -> tuple[_Claim, list[str], list[str]]:
        """Claim the new ids; wait while some of the others are in doubt elsewhere (a concurrent or
        earlier attempt of the same events), up to the deadline. (claim, duplicates, conflicts): with
        conflicts, nothing is claimed."""
        ids = [e.event_id for e in events]
        digests = {e.event_id: _content_digest(e) for e in events}
        pause = 0.005
        while True:
            received_at = datetime.now(UTC)
            async with unit_of_work(self.sessions) as session:
                fresh = await repository.claim_new(
                    session,
                    institution_id=caller.institution_id,
                    digests=digests,
                    received_at=received_at,
                    pending_until=received_at + timedelta(seconds=LEASE_S),
                )
                # Not claimed now and not accepted: in doubt elsewhere, or released since the insert met
                # its claim (then the next round claims it); never taken for a duplicate.
                others = [i for i in ids if i not in fresh]
                accepted = await repository.accepted_among(
                    session, institution_id=caller.institution_id, event_ids=others
                )
                # An accepted id whose digest differs is a conflict whatever becomes of the others (one kept
                # without a digest, from before they were kept, is compared by id only).
                conflicts = [i for i in others if accepted.get(i) not in (None, digests[i])]
                if conflicts:
                    await session.rollback()  # all or nothing: none claimed when some are refused
                    return _Claim(caller, "", received_at, {}), [], conflicts
                doubtful = set(others) - accepted.keys()
                if not doubtful:
                    break
                await session.rollback()  # all or nothing: none claimed while some are in doubt
            if deadline is not None and asyncio.get_running_loop().time() + pause > deadline:
                metrics.REJECTED.labels(caller.kind, "in_doubt").inc(len(ids))
                raise InDoubt(IN_DOUBT, details=sorted(doubtful)[:100])
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)
        topic = topics.name(topics.EVENT_TOPICS[caller.kind], self.prefix)
        stamp = received_at.isoformat()
        records = {
            e.event_id: Record(
                topic=topic,
                key=keys.person_key(e.person_phone),
                value=_envelope_json(caller.institution_id, stamp, e),
            )
            for e in events
            if e.event_id in fresh
        }
        duplicates = [i for i in ids if i not in fresh]
        return _Claim(caller, topic, received_at, records), duplicates, []

    async def _deliver(self, claim: _Claim, deadline: float | None) -> None:
        try:
            delivery = await self.producer.enqueue(list(claim.records.values()))
        except DeliveryInDoubt as exc:  # part was handed over
            self._follow(claim, exc.delivery)
            raise InDoubt(IN_DOUBT) from exc
        except Unavailable:
            await self._settle(claim, accepted=())  # nothing was handed over: nothing can land
            metrics.REJECTED.labels(claim.caller.kind, "unavailable").inc(len(claim.records))
            raise
        try:
            await self._wait(claim, delivery, deadline)
        except (TimeoutError, InDoubt) as exc:
            self._follow(claim, delivery)
            metrics.REJECTED.labels(claim.caller.kind, "in_doubt").inc(len(claim.records))
            raise InDoubt(IN_DOUBT) from exc
        await self._settle(claim, accepted=claim.records)

    async def _wait(self, claim: _Claim, delivery: asyncio.Future[Any], deadline: float | None) -> None:
        """Wait for the delivery until the deadline (None: however long Kafka takes), renewing the claim's
        lease meanwhile: a lease that lapsed while its records were still in the producer's hands would
        have the sweeper release them, and a retry send them again. TimeoutError at the deadline."""
        loop = asyncio.get_running_loop()
        while True:
            wait = LEASE_S / 3 if deadline is None else min(LEASE_S / 3, max(0.0, deadline - loop.time()))
            try:
                await asyncio.wait_for(asyncio.shield(delivery), wait)
                return
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    raise
            await self._renew(claim)

    def _follow(self, claim: _Claim, delivery: asyncio.Future[Any]) -> None:
        """Settle the claim in the background once the delivery's outcome is known."""
        task = asyncio.create_task(self._follow_up(claim, delivery))
        self._following.add(task)
        task.add_done_callback(self._following.discard)

    async def _renew(self, claim: _Claim) -> None:
        ids = list(claim.records)
        try:
            async with unit_of_work(self.sessions) as session:
                until = datetime.now(UTC) + timedelta(seconds=LEASE_S)
                await repository.renew(
                    session,
                    institution_id=claim.caller.institution_id,
                    event_ids=ids,
                    received_at=claim.received_at,
                    until=until,
                )
        except Exception:  # noqa: BLE001 - the database may be down; the lease then lapses
            log.warning("claim lease not renewed", extra=log_fields(events=len(ids)))

    async def _follow_up(self, claim: _Claim, delivery: asyncio.Future[Any]) -> None:
        ids = list(claim.records)
        while not delivery.done():
            await asyncio.wait([delivery], timeout=LEASE_S / 3)
            if not delivery.done():
                await self._renew(claim)
        if delivery.exception() is None:
            await self._settle(claim, accepted=ids)
            return
        # The producer gave up: what it had handed over may be on the topic or not. Read it back.
        found = await landed(
            self.kafka,
            claim.topic,
            since=claim.received_at,
            identify=_identify(claim.caller.institution_id),
            wanted=ids,
            keys=[r.key for r in claim.records.values() if r.key is not None],
        )
        await self._settle(claim, accepted=found)

    async def _settle(self, claim: _Claim, *, accepted: Iterable[str]) -> None:
        """Mark the claim's accepted ids accepted and release the rest. If the database cannot be reached
        the claims stay in doubt; their lease lapses and the sweeper settles them by reading Kafka."""
        accepted_ids = set(accepted)
        try:
            async with unit_of_work(self.sessions) as session:
                await repository.settle(
                    session,
                    institution_id=claim.caller.institution_id,
                    accepted=accepted_ids,
                    released=[i for i in claim.records if i not in accepted_ids],
                    received_at=claim.received_at,
                )
        except Exception:  # noqa: BLE001 - left to the sweeper, which decides from Kafka itself
            log.warning("claims not settled; the sweeper will", extra=log_fields(events=len(claim.records)))

    async def sweep_once(self) -> int:
        """Settle claims whose lease lapsed (their instance died or lost the database) by reading back
        the topic, each institution's in a transaction of its own (its claims locked while its topic is
        read): a topic that cannot be read back now holds up only its institution's. Returns how many
        were settled."""
        async with self.sessions() as session:
            institutions = await repository.lapsed_institutions(session, now=datetime.now(UTC))
        settled = 0
        unread: set[str] = set()  # topics not read back this round: their institutions wait for the next
        for institution_id in institutions:
            try:
                settled += await self._sweep(institution_id, skip=unread)
            except ReadBackFailed as exc:  # (a Kafka timeout is an OSError: not the database's)
                unread.add(exc.topic)
                outages.log_failure(
                    log, exc.__cause__ or exc, "lapsed claims not read back", institution=institution_id
                )
        return settled

    async def _sweep(self, institution_id: str, *, skip: set[str]) -> int:
        async with unit_of_work(self.sessions) as session:
            found_institution = await session.get(Institution, institution_id)
            assert found_institution is not None  # the ledger's foreign key
            topic = topics.name(topics.EVENT_TOPICS[found_institution.kind], self.prefix)
            if topic in skip:
                return 0
            rows = await repository.lapsed_claims(
                session, institution_id=institution_id, now=datetime.now(UTC), limit=SWEEP_BATCH
            )
            if not rows:
                return 0
            ids = [r.event_id for r in rows]
            try:
                found = await landed(
                    self.kafka,
                    topic,
                    since=min(r.received_at for r in rows),
                    identify=_identify(institution_id),
                    wanted=ids,
                )
            except Exception as exc:
                raise ReadBackFailed(topic) from exc
            await repository.settle(
                session,
                institution_id=institution_id,
                accepted=found,
                released=[i for i in ids if i not in found],
                received_at=None,  # the rows locked above
            )
        log.info(
            "lapsed claims settled from Kafka",
            extra=log_fields(institution=institution_id, landed=len(found), released=len(ids) - len(found)),
        )
        return len(rows)

    async def sweep_round(self) -> int:
        """One round of the sweeper. A lease lapses when its instance is gone, but also when the database was
        down for longer than a lease: every instance failed to renew, and a live instance may still hold the
        records in its producer, delivering them once Kafka answers (read back now, they would be missing,
        released, and sent again by a retry). So lapsed claims are settled only by an instance that has seen
        the database answer for a whole lease, in which any live instance renewed what it still holds;
        until then a round only looks at the database. Returns how many claims were settled."""
        if self._database_up_since is None or self._clock() - self._database_up_since < LEASE_S:
            try:
                async with self.sessions() as session:
                    await reach(session)
            except Exception:
                self._database_up_since = None
                raise
            if self._database_up_since is None:
                self._database_up_since = self._clock()
            return 0
        try:
            return await self.sweep_once()
        except Exception as exc:
            if outages.database_down(exc):
                self._database_up_since = None
            raise

    async def sweep(self) -> None:
        while True:
            try:
                await self.sweep_round()
            except Exception as exc:  # noqa: BLE001 - retried next round; claims stay in doubt meanwhile
                outages.log_failure(log, exc, "sweeping lapsed claims failed")
            await asyncio.sleep(SWEEP_S)

    async def stop(self) -> None:
        """Deliveries still followed are left to the sweeper (their leases lapse)."""
        for task in list(self._following):
            task.cancel()
        await asyncio.gather(*self._following, return_exceptions=True)


def _identify(institution_id: str) -> Identify:
    def identify(record: ConsumerRecord) -> str | None:
        try:
            envelope = orjson.loads(record.value or b"")
            if envelope.get("institution") != institution_id:
                return None
            return str(envelope["event"]["event_id"])
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
            return None

    return identify


def _envelope_json(institution: str, received_at: str, event: EventBase) -> bytes:
    return orjson.dumps(
        {"institution": institution, "received_at": received_at, "event": event.model_dump(mode="json")}
    )


def _content_digest(event: EventBase) -> bytes:
    """What makes a repeat of an event id the same event: the sha-256 of the validated event as canonical
    JSON (sorted keys, no spacing, fields at their defaults left out), amounts to two places and times in
    UTC, so that a retry differing only in how it is written ("10" or "10.00", +08:00 or Z, key order, a
    default written out or not) is the same. Defaults left out keep it the same across a release that adds
    a field with a default: a retry of an event accepted before it is still a repeat."""
    fields = {name: _canonical(value) for name, value in event.model_dump(exclude_defaults=True).items()}
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).digest()


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value
