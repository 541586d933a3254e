"""Event time is bounded at both ends: the ingest API refuses events dated too far ahead or too far back
(422 naming the event and the field), the scorer dead-letters such events produced straight to Kafka, and
its clock (a partition's watermark) cannot be dragged ahead by them: four transfers dated 9999 once made it
forget most of the people it held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from services.scorer.books import Book
from services.scorer.main import Scorer
from streams import keys, topics
from streams.schemas.event_time import EventTimeBounds
from streams.schemas.events import event_adapter
from streams.schemas.movements import Movement
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import eventually, read_topic
from tests.scorer.helpers import ends, send

BOUNDS = EventTimeBounds(max_ahead_s=300, history_s=7 * 86_400)
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "refused"),
    [
        (NOW + timedelta(minutes=4), False),
        (NOW + timedelta(minutes=6), True),
        (NOW - timedelta(days=6), False),
        (NOW - timedelta(days=8), True),
        (datetime(9999, 12, 31, 23, tzinfo=UTC), True),
        (datetime(1, 1, 1, tzinfo=UTC), True),
        (datetime.fromisoformat("9999-12-31T23:59:59-14:00"), True),
        (datetime.fromisoformat("0001-01-01T00:00:00+14:00"), True),
    ],
)
def test_bounds(at: datetime, refused: bool):
    assert (BOUNDS.problem(at, now=NOW.timestamp()) is not None) == refused


@pytest.mark.parametrize("number", [1764244800, 1764244800000, 1764244800.5, "1764244800", "1764244800000"])
def test_an_event_time_is_never_a_bare_number(number: Any):
    event = {**f.call(f.phone(), start=NOW, minutes=1), "occurred_at": number}
    with pytest.raises(ValidationError, match="not a number"):
        event_adapter.validate_python(event)


def test_a_book_forgets_against_its_watermark_never_ahead_of_the_wall_clock():
    class Seen:
        def __init__(self, at: float) -> None:
            self.last_seen = at

    now = NOW.timestamp()
    book: Book[Any] = Book()
    for key, at in (("old", now - 7000), ("recent", now - 60), ("ahead", now + 290)):
        book[key] = Seen(at)
        book.touched(key, at)
    # The horizon is two hours: against the newest event (5 min ahead) "old" would go early.
    assert book.watermark(now) == now
    assert book.forget_silent(7200, now=now) == 0
    assert book.forget_silent(7200, now=now + 300) == 1 and "old" not in book


def _held(instance: Scorer) -> dict[int, tuple[set[str], float]]:
    assert instance.persons is not None
    return {p: (set(book), book.newest) for p, book in instance.persons.people.items()}


@pytest.mark.integration
async def test_events_dated_9999_change_nothing_the_scorer_holds(infra: Infra, ingest, scorer, sessions):
    bank_id, bank = await f.institution(sessions, "bank")
    people = [f.phone() for _ in range(12)]
    ordinary = [
        f.transfer(
            p, payer_account=f.account(), payee_account=f.account(), amount="50.00", at=f.minutes_ago(2)
        )
        for p in people
    ]
    assert (await ingest.post("/v1/events", json={"events": ordinary}, headers=bank)).status_code == 200
    held = lambda: {p for book in scorer.persons.people.values() for p in book}  # noqa: E731
    await eventually(lambda: set(people) <= held(), timeout_s=20)
    before = _held(scorer)

    far = [datetime(9999, 12, 31, 23, 59, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)]
    dated = [
        f.transfer(p, payer_account=f.account(), payee_account=f.account(), amount="50.00", at=at)
        for p in people[:4]
        for at in far
    ]
    refused = await ingest.post(
        "/v1/events", json={"events": [ordinary[0] | {"event_id": "ok-1"}, *dated]}, headers=bank
    )
    assert refused.status_code == 422, refused.text
    details = refused.json()["error"]["details"]
    assert [(d["index"], d["event_id"], d["field"]) for d in details] == [
        (i + 1, e["event_id"], "occurred_at") for i, e in enumerate(dated)
    ]

    # Straight to Kafka, then an ordinary event of the same person (same partition, so read after them).
    marker = f.transfer(
        people[0], payer_account=f.account(), payee_account=f.account(), amount="50.00", at=f.minutes_ago(1)
    )
    await send(infra, infra.prefix, "bank", bank_id, [*dated, marker])
    event_topics = [topics.name(t, infra.prefix) for t in topics.EVENT_TOPICS.values()]

    async def handled_all() -> bool:
        return sum(scorer.persons.checkpoints.positions.values()) >= await ends(infra, *event_topics)

    await eventually(handled_all, timeout_s=20, every_s=0.2)

    after = _held(scorer)
    for partition, (phones, _) in before.items():
        assert phones <= after[partition][0]  # nobody forgotten
        assert after[partition][1] <= datetime.now(UTC).timestamp()  # the clock was not dragged ahead
    assert {p for book in scorer.persons.people.values() for p in book} >= set(people)
    dead = await read_topic(
        infra.kafka,
        topics.name(topics.DEAD_LETTER, infra.prefix),
        until=lambda recs: (
            {orjson.dumps({"institution": bank_id, "event": e}) for e in dated} <= {r.value for r in recs}
        ),
        timeout_s=15,
    )
    reasons = {dict(r.headers)["reason"] for r in dead if r.key == keys.person_key(people[0])}
    assert b"event_time" in reasons


def _accounts(instance: Scorer) -> dict[int, tuple[set[str], float]]:
    assert instance.accounts is not None
    return {p: (set(book), book.newest) for p, book in instance.accounts.accounts.items()}


@pytest.mark.integration
async def test_movements_dated_9999_change_nothing_the_account_stage_holds(infra: Infra, scorer):
    """Stage two keeps the same rule: a movement produced straight to its topic dated out of bounds is
    dead-lettered, not held (an account dated 9999 would never be forgotten, nor its clock come back)."""
    institution, held, fresh = "bank-direct", f.account(), f.account()
    topic = topics.name(topics.TRANSFERS_BY_ACCOUNT, infra.prefix)

    def move(account: str, at: datetime) -> tuple[bytes, bytes]:
        value = Movement(
            direction="out",
            account=account,
            institution=institution,
            counterparty=f.account(),
            counterparty_institution="bank-b",
            amount=50.0,
            occurred_at=at,
            event_ref=f.unique("ref"),
        )
        return keys.account_key(institution, account), value.model_dump_json().encode()

    async def produce(messages: list[tuple[bytes, bytes]]) -> None:
        producer = AIOKafkaProducer(**infra.kafka.options())
        await producer.start()
        try:
            for key, value in messages:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    async def handled_all() -> bool:
        return sum(scorer.accounts.checkpoints.positions.values()) >= await ends(infra, topic)

    await produce([move(held, f.minutes_ago(2))])
    await eventually(handled_all, timeout_s=20, every_s=0.2)
    before = _accounts(scorer)
    assert f"{institution}/{held}" in {k for keys_, _ in before.values() for k in keys_}

    far = [datetime(9999, 12, 31, 23, 59, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)]
    dated = [move(account, at) for account in (held, fresh) for at in far]
    await produce([*dated, move(held, f.minutes_ago(1))])  # the last one: an ordinary marker
    await eventually(handled_all, timeout_s=20, every_s=0.2)

    after = _accounts(scorer)
    for partition, (accounts, _) in before.items():
        assert accounts <= after[partition][0]  # nothing forgotten
    assert all(newest <= datetime.now(UTC).timestamp() for _, newest in after.values())  # no clock ahead
    assert f"{institution}/{fresh}" not in {k for keys_, _ in after.values() for k in keys_}
    dead = await read_topic(
        infra.kafka,
        topics.name(topics.DEAD_LETTER, infra.prefix),
        until=lambda recs: {v for _, v in dated} <= {r.value for r in recs},
        timeout_s=15,
    )
    reasons = {dict(r.headers)["reason"] for r in dead if r.value in {v for _, v in dated}}
    assert reasons == {b"event_time"}
