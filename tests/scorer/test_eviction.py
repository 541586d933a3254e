"""Bounded state: people and accounts silent longer than their horizon are forgotten (in event time),
dedup ids are capped, and what is kept survives the snapshot codec unchanged."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson

from models.features.account import AccountState
from models.features.codec import decode, encode
from services.scorer.account_stage import AccountStage
from services.scorer.books import Book
from services.scorer.model_slot import ModelSlot
from services.scorer.settings import ScorerSettings
from tests import factories as f
from tests.scorer.scenes import event_record, stage_one, unused_producer

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def _call_at(phone: str, at: datetime) -> dict[str, object]:
    return f.call(phone, start=at, minutes=2)


def test_people_silent_longer_than_the_horizon_are_forgotten():
    stage = stage_one(state_horizon_hours=2)
    old, recent = f.phone(), f.phone()
    for i, (phone, at) in enumerate(
        [(old, NOW - timedelta(hours=3)), (recent, NOW - timedelta(hours=1)), (recent, NOW)]
    ):
        stage._one(0, event_record("tel-a", _call_at(phone, at), i), [])
    assert set(stage.people[0]) == {old, recent}
    stage.prune(time.monotonic())
    assert set(stage.people[0]) == {recent}  # 3 h before the partition's newest event > 2 h horizon


def test_dedup_ids_are_capped_per_partition():
    stage = stage_one(dedup_max_refs=100)
    phone = f.phone()
    for i in range(150):
        stage._one(0, event_record("tel-a", _call_at(phone, NOW + timedelta(minutes=i)), i), [])
    assert len(stage.seen[0]) == 100


def test_accounts_silent_longer_than_the_horizon_are_forgotten():
    settings = ScorerSettings(account_horizon_hours=1)
    stage = AccountStage(
        settings,
        unused_producer(),
        prefix="",
        version="t",
        model=ModelSlot(settings.model_dir),
    )
    at = NOW.timestamp()
    book = stage.accounts.setdefault(0, Book())
    for key, when in (("b/old", at - 7200), ("b/new", at), ("b/late", at - 7300)):
        state = book.setdefault(key, AccountState())
        state.record_in(when, "b/payer", 100.0, f"ref-{key}")
        book.touched(key, when)
    stage.prune()
    # The late one was touched last: it goes once the silent entries before it have gone.
    assert set(stage.accounts[0]) == {"b/new", "b/late"}
    book.touched("b/new", at + 60)
    stage.prune()
    assert set(stage.accounts[0]) == {"b/new"}


def test_a_restored_book_forgets_in_event_time_order():
    at = NOW.timestamp()
    states = {}
    for key, when in (("b/new", at), ("b/old", at - 7200), ("b/mid", at - 1800)):
        states[key] = AccountState()
        states[key].record_in(when, "b/payer", 100.0, f"ref-{key}")
    book = Book.restored(states)
    assert list(book) == ["b/old", "b/mid", "b/new"] and book.newest == at
    assert book.forget_silent(3600, now=time.time()) == 1 and list(book) == ["b/mid", "b/new"]


def test_person_state_round_trips_through_the_snapshot_codec():
    stage = stage_one()
    phone = f.phone()
    stage._one(0, event_record("tel-a", _call_at(phone, NOW), 0), [])
    person = stage.people[0][phone]
    again = decode(type(person), orjson.loads(orjson.dumps(encode(person))))
    assert again == person
    assert again.unknown_calls_24h.stats(NOW.timestamp()) == person.unknown_calls_24h.stats(NOW.timestamp())


def test_an_accounts_counted_movements_are_forgotten_after_a_day_also_one_that_came_late():
    """What guards a replay from counting a movement twice is kept a day: a busy account keeps a day's,
    not more; one that came late (an older time after younger ones) goes too, once those before it have."""
    state = AccountState()
    t0 = 1_800_000_000.0
    for i in range(3 * 1440):  # three days, one inflow a minute
        state.record_in(t0 + i * 60, f"bank-b/payer-{i}", 10.0, f"bank-b:e{i}")
        if i == 100:
            state.record_in(t0 - 3600, "bank-b/late", 10.0, "bank-b:late")  # an hour older than the first
    newest = t0 + (3 * 1440 - 1) * 60
    assert min(state.refs.values()) >= newest - 86_400 - 60
    assert "bank-b:late" not in state.refs
    assert not state.record_in(newest - 600, "bank-b/payer-x", 10.0, f"bank-b:e{3 * 1440 - 10}")  # a replay
