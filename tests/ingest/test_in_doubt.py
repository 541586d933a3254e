"""Events handed to Kafka that it has not acknowledged yet are in doubt: the answer says so, a retry is told
so (or waits) instead of sending them again, and the claims are settled by what Kafka holds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest import claims as claims_module
from services.ingest import repository, service
from services.ingest.claims import Claims
from services.ingest.models import IngestedEvent
from services.ingest.settings import IngestSettings
from services.institutions.credentials import Caller
from services.kit.db import make_engine, make_sessionmaker, reach, unit_of_work
from streams import keys, settle, topics
from streams.producer import Producer, Record
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import broker_frozen, eventually, read_topic

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def _ingest(infra: Infra, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    from services.ingest.app import build

    app = build(infra.common, IngestSettings(intake=False, **settings))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest", timeout=60) as client:
            yield client


async def _copies(infra: Infra, event_ids: set[str]) -> list[str]:
    records = await read_topic(infra.kafka, topics.name(topics.EVENTS_TELECOM, infra.prefix))
    found = [
        orjson.loads(r.value)["event"]["event_id"] for r in records if r.value and r.value.startswith(b"{")
    ]
    return sorted(i for i in found if i in event_ids)


@pytest.mark.alone  # it freezes the Kafka both workers share
async def test_an_answer_past_kafkas_silence_is_in_doubt_and_a_retry_is_told_the_outcome(infra, sessions):
    _, headers = await f.institution(sessions, "telecom")
    events = [f.call(f.phone(), start=f.minutes_ago(10), minutes=2) for _ in range(3)]
    batch = {"events": events}
    async with _ingest(infra, answer_timeout_s=1.0) as ingest:
        warm = [f.call(f.phone(), start=f.minutes_ago(10), minutes=2)]
        assert (await ingest.post("/v1/events", json={"events": warm}, headers=headers)).status_code == 200
        with broker_frozen():
            first = await ingest.post("/v1/events", json=batch, headers=headers)
            again = await ingest.post("/v1/events", json=batch, headers=headers)
        for answer in (first, again):
            assert answer.status_code == 503
            assert answer.json()["error"]["code"] == "in_doubt"
            assert int(answer.headers["Retry-After"]) >= 1

        async def settled() -> httpx.Response | None:
            answer = await ingest.post("/v1/events", json=batch, headers=headers)
            return answer if answer.status_code == 200 else None

        answer = await eventually(settled, timeout_s=60, every_s=0.5)
    assert isinstance(answer, httpx.Response)
    ids = [e["event_id"] for e in events]
    assert answer.json() == {"accepted": 0, "duplicates": ids}  # the first attempt landed, once
    assert await _copies(infra, set(ids)) == sorted(ids)


async def test_lapsed_claims_are_settled_by_what_kafka_holds(infra, ingest, sessions):
    """A claim whose instance died: accepted if its event is on the topic, released (sendable) if not."""
    telecom, headers = await f.institution(sessions, "telecom")
    landed, lost = (f.call(f.phone(), start=f.minutes_ago(5), minutes=1) for _ in range(2))
    past = f.now() - timedelta(minutes=1)
    async with sessions() as s, s.begin():
        for event in (landed, lost):
            s.add(
                IngestedEvent(
                    institution_id=telecom, event_id=event["event_id"], received_at=past, pending_until=past
                )
            )
    envelope = {"institution": telecom, "received_at": past.isoformat(), "event": landed}
    producer = Producer(infra.kafka, client_id="test-dead-ingest")  # what the dead instance had sent
    await producer.start()
    try:
        topic = topics.name(topics.EVENTS_TELECOM, infra.prefix)
        await producer.send_all([Record(topic, orjson.dumps(envelope), keys.person_key(landed["callee"]))])
    finally:
        await producer.stop()

    claims = Claims(
        sessions, producer, infra.kafka.as_principal("stopline-ingest"), topic_prefix=infra.prefix
    )
    await claims.sweep_once()  # (the session's ingest may have swept them first: the outcome is the same)
    answer = await ingest.post("/v1/events", json={"events": [landed, lost]}, headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 1, "duplicates": [landed["event_id"]]}
    assert await _copies(infra, {landed["event_id"], lost["event_id"]}) == sorted(
        [landed["event_id"], lost["event_id"]]
    )


async def test_an_institution_whose_topic_is_not_read_back_holds_up_only_its_own_claims(
    infra, sessions, monkeypatch
):
    telecom, _ = await f.institution(sessions, "telecom")
    bank, other_bank = [(await f.institution(sessions, "bank"))[0] for _ in range(2)]
    past = f.now() - timedelta(minutes=1)
    ids = {telecom: f.unique("ev"), bank: f.unique("ev"), other_bank: f.unique("ev")}
    async with sessions() as s, s.begin():
        for institution, event_id in ids.items():
            s.add(
                IngestedEvent(
                    institution_id=institution, event_id=event_id, received_at=past, pending_until=past
                )
            )
    unreadable = topics.name(topics.EVENTS_BANK, infra.prefix)
    real_landed = settle.landed

    async def landed(kafka: Any, topic: str, **kw: Any) -> set[str]:
        if topic == unreadable:
            raise TimeoutError("the bank topic's leader does not answer")  # (an OSError, as Kafka's are)
        return await real_landed(kafka, topic, **kw)

    monkeypatch.setattr(claims_module, "landed", landed)
    kafka = infra.kafka.as_principal("stopline-ingest")
    claims = Claims(sessions, Producer(kafka, client_id="unused"), kafka, topic_prefix=infra.prefix)
    failed: list[str] = []  # this sweeper's read-backs that failed (the session's ingest sweeps too)
    sweep = claims._sweep

    async def counted(institution_id: str, *, skip: set[str]) -> int:
        try:
            return await sweep(institution_id, skip=skip)
        except claims_module.ReadBackFailed:
            failed.append(institution_id)
            raise

    monkeypatch.setattr(claims, "_sweep", counted)
    await claims.sweep_once()  # no error: the bank's claims wait for the next round, the telecom's do not
    async with sessions() as s:
        rows = {
            r.institution_id: r
            for r in (
                await s.execute(select(IngestedEvent).where(IngestedEvent.event_id.in_(ids.values())))
            ).scalars()
        }
    assert telecom not in rows  # not on the topic: released (a retry may send it)
    assert rows[bank].pending_until is not None and rows[other_bank].pending_until is not None  # in doubt
    assert len(failed) <= 1  # one bank's topic failed: the other bank's is not read again this round


async def test_claims_are_swept_only_after_the_database_answered_for_a_whole_lease(
    infra, sessions, monkeypatch
):
    """Every lease lapses in a database outage longer than a lease, those of live instances too, whose
    producers may still deliver what they claimed: read back at once, it would be released and sent again
    by a retry. The sweeper settles lapsed claims only after a whole lease of the database answering (in
    which any live instance renews), after it starts and after every outage."""
    clock = [1000.0]
    kafka = infra.kafka.as_principal("stopline-ingest")
    claims = Claims(
        sessions,
        Producer(kafka, client_id="unused"),
        kafka,
        topic_prefix=infra.prefix,
        clock=lambda: clock[0],
    )
    swept: list[float] = []

    async def sweep_once() -> int:  # what the round decides, not the settling (tested above)
        async with claims.sessions() as session:
            await reach(session)
        swept.append(clock[0])
        return 0

    monkeypatch.setattr(claims, "sweep_once", sweep_once)
    lease = claims_module.LEASE_S

    async def rounds(*at: float) -> list[float]:
        swept.clear()
        for t in at:
            clock[0] = t
            await claims.sweep_round()
        return list(swept)

    assert await rounds(1000, 1000 + lease - 1) == []  # just started
    assert await rounds(1000 + lease, 1000 + lease + 5) == [1000 + lease, 1000 + lease + 5]

    down = make_engine("postgresql+asyncpg://stopline@127.0.0.1:1/stopline")  # nothing listens there
    claims.sessions = make_sessionmaker(down)
    try:
        for t in (2000, 2005):  # the database gone (whether the round was looking or settling)
            clock[0] = t
            with pytest.raises(OSError):
                await claims.sweep_round()
    finally:
        await down.dispose()
    claims.sessions = sessions
    assert await rounds(2010, 2010 + lease - 1) == []  # back: renewals get a whole lease first
    assert await rounds(2010 + lease) == [2010 + lease]


async def test_a_claim_released_just_after_a_retry_met_it_is_claimed_again_not_taken_for_a_duplicate(
    infra, ingest, sessions, monkeypatch
):
    """An earlier attempt's claim is released (nothing of it reached Kafka) between a retry's insert, which
    met the claim, and its look at it: the retry claims and sends the event instead of answering that it
    was accepted before (it is on no topic)."""
    telecom, headers = await f.institution(sessions, "telecom")
    event = f.call(f.phone(), start=f.minutes_ago(5), minutes=1)
    now = f.now()
    async with sessions() as s, s.begin():
        s.add(
            IngestedEvent(
                institution_id=telecom,
                event_id=event["event_id"],
                received_at=now,
                pending_until=now + timedelta(seconds=30),
            )
        )
    claim_new = repository.claim_new
    released: list[str] = []

    async def claim_then_release(session: AsyncSession, **kw: Any) -> set[str]:
        fresh = await claim_new(session, **kw)
        if kw["institution_id"] == telecom and not released:
            async with unit_of_work(sessions) as other:  # the earlier attempt settles: nothing landed
                await repository.settle(
                    other, institution_id=telecom, accepted=(), released=[event["event_id"]], received_at=now
                )
            released.append(event["event_id"])
        return fresh

    monkeypatch.setattr(repository, "claim_new", claim_then_release)
    answer = await ingest.post("/v1/events", json={"events": [event]}, headers=headers)
    assert released
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 1, "duplicates": []}
    assert await _copies(infra, {event["event_id"]}) == [event["event_id"]]


@pytest.mark.alone  # it freezes the Kafka both workers share
async def test_events_waiting_on_kafka_as_long_as_it_takes_keep_their_claims(infra, sessions, monkeypatch):
    """The intake waits for Kafka however long it takes; meanwhile the claims' lease is renewed, since a
    lapsed one would have the sweeper release events still in the producer's hands (and a retry of them
    send them again once they had landed)."""
    monkeypatch.setattr(claims_module, "LEASE_S", 1.5)
    telecom, _ = await f.institution(sessions, "telecom")
    caller = Caller(institution_id=telecom, kind="telecom")
    bounds = infra.common.event_time_bounds()
    calls = [f.call(f.phone(), start=f.minutes_ago(5), minutes=1) for _ in range(2)]
    warm, event = service.validate_events(calls, bounds=bounds)
    kafka = infra.kafka.as_principal("stopline-ingest")
    producer = Producer(kafka, client_id="test-ingest-lease")
    await producer.start()
    claims = Claims(sessions, producer, kafka, topic_prefix=infra.prefix)
    try:
        # The producer learns the topic's partitions first (a frozen broker would not tell it).
        await claims.accept(caller=caller, events=[warm], answer_within_s=None)
        with broker_frozen():
            waiting = asyncio.create_task(claims.accept(caller=caller, events=[event], answer_within_s=None))
            first = await eventually(lambda: _lease(sessions, telecom, event.event_id))
            # Past the lease it was claimed with, the claim is still the waiting instance's.
            await eventually(lambda: f.now() > first + timedelta(seconds=0.5), timeout_s=5)
            assert await _lease(sessions, telecom, event.event_id) > f.now()
            assert not waiting.done()
        result = await waiting
    finally:
        await producer.stop()
    assert (result.accepted, result.duplicates) == (1, [])
    assert await _lease(sessions, telecom, event.event_id) is None  # settled: accepted
    assert await _copies(infra, {event.event_id}) == [event.event_id]


async def _lease(sessions: Any, institution: str, event_id: str) -> Any:
    async with sessions() as s:
        row = await s.get(IngestedEvent, (institution, event_id))
        return None if row is None else row.pending_until


async def test_a_late_read_back_settles_only_its_own_claim_not_a_retrys_newer_one(
    infra, sessions, monkeypatch
):
    """A's producer gave up and A reads the topic back; meanwhile its lease lapses, the sweeper releases
    the claim, and the client's retry claims and sends the event on C. A's read-back, taken before C's
    send landed, finds nothing: it must not release C's claim, or the ledger forgets an event on Kafka
    and a later retry sends it again."""
    telecom, _ = await f.institution(sessions, "telecom")
    caller = Caller(institution_id=telecom, kind="telecom")
    (event,) = service.validate_events(
        [f.call(f.phone(), start=f.minutes_ago(5), minutes=1)],
        bounds=infra.common.event_time_bounds(),
    )
    kafka = infra.kafka.as_principal("stopline-ingest")
    producer = Producer(kafka, client_id="test-late-read-back")
    await producer.start()
    a, c, sweeper = (Claims(sessions, producer, kafka, topic_prefix=infra.prefix) for _ in range(3))
    try:
        claim_a, _, _ = await a._claim(caller, [event], None)
        read, go_on = asyncio.Event(), asyncio.Event()
        real = settle.landed

        async def late(*args: Any, **kw: Any) -> set[str]:
            found = await real(*args, **kw)  # A's attempt never reached Kafka: nothing found
            read.set()
            await go_on.wait()
            return found

        monkeypatch.setattr(claims_module, "landed", late)
        gave_up = asyncio.get_running_loop().create_future()
        gave_up.set_exception(RuntimeError("the producer gave up"))
        following = asyncio.create_task(a._follow_up(claim_a, gave_up))
        await read.wait()
        monkeypatch.setattr(claims_module, "landed", real)
        async with sessions() as s, s.begin():  # A's lease lapsed
            row = await s.get(IngestedEvent, (telecom, event.event_id))
            assert row is not None
            row.pending_until = f.now() - timedelta(seconds=1)
        await sweeper.sweep_once()
        claim_c, duplicates, _ = await c._claim(caller, [event], None)
        assert list(claim_c.records) == [event.event_id] and not duplicates
        delivery = await producer.enqueue(list(claim_c.records.values()))
        go_on.set()
        await following
        await delivery
        await c._settle(claim_c, accepted=claim_c.records)
        async with sessions() as s:
            row = await s.get(IngestedEvent, (telecom, event.event_id))
        assert row is not None and row.pending_until is None
        again = await c.accept(caller=caller, events=[event], answer_within_s=10)
    finally:
        await producer.stop()
    assert (again.accepted, again.duplicates) == (0, [event.event_id])
    assert await _copies(infra, {event.event_id}) == [event.event_id]
