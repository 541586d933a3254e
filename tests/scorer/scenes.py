"""Money-outs as the account stage receives them: institution events through stage one (the feature
engine), so the feature rows are the ones the live scorer computes; and an account stage to score them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from services.scorer.account_stage import AccountStage, Pending
from services.scorer.books import Book
from services.scorer.model_slot import ModelSlot
from services.scorer.person_stage import PersonStage
from services.scorer.settings import ScorerSettings
from streams import keys, topics
from streams.connection import KafkaConnection
from streams.producer import Producer, Record
from streams.schemas.alerts import Alert
from streams.schemas.movements import Movement, movement_adapter
from tests import factories as f

UNUSED = KafkaConnection("127.0.0.1:1", username="unused", password="unused")

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
CLOCK = NOW + timedelta(hours=6)
Event = tuple[str, dict[str, Any]]  # (institution, event)


def unused_producer() -> Producer:
    return Producer(UNUSED, client_id="unused")  # never started: the code under test sends nothing


def stage_one(**settings: Any) -> PersonStage:
    # Its wall clock is a little after NOW: scenes are dated around NOW, which the history window of a real
    # clock would leave behind one day.
    return PersonStage(ScorerSettings(**settings), unused_producer(), prefix="", clock=CLOCK.timestamp)


def event_record(institution: str, event: dict[str, Any], offset: int) -> ConsumerRecord[bytes, bytes]:
    """An institution event as stage one reads it from Kafka (envelope, keyed by person)."""
    phone = next(
        event[k] for k in ("callee", "recipient", "subscriber", "holder_phone", "payer_phone") if k in event
    )
    value = orjson.dumps({"institution": institution, "event": event})
    key = keys.person_key(phone)
    partition = keys.partition_of(key, topics.EVENT_PARTITIONS)  # where Kafka's default partitioner puts it
    return ConsumerRecord("events", partition, offset, 0, 0, key, value, None, 0, 0, ())


def movements(*events: Event, persons: PersonStage | None = None) -> list[Movement]:
    """Events through stage one (a fresh one unless given); the movements (both sides of each money
    movement) it forwards to the account stage."""
    persons = persons or stage_one()
    out: list[Record] = []
    for offset, (institution, event) in enumerate(events):
        persons._one(0, event_record(institution, event, offset), out)
    assert {r.topic for r in out} <= {topics.name(topics.TRANSFERS_BY_ACCOUNT)}  # no dead letters
    return [movement_adapter.validate_json(r.value) for r in out]


def inflows(*events: Event, persons: PersonStage | None = None) -> list[Movement]:
    """The inflows stage one forwards to the account stage."""
    return [m for m in movements(*events, persons=persons) if m.direction == "in"]


@dataclass
class Scene:
    """A victim, the number that calls them, their account and the payee account, times before NOW."""

    victim: str
    caller: str
    payer_account: str
    payee_account: str
    payee_bank: str = "bank-x"

    def call(self, *, reported: bool = False, minutes_ago: float = 40, minutes: float = 35) -> Event:
        start = NOW - timedelta(minutes=minutes_ago)
        return "tel-a", f.call(
            self.victim, caller=self.caller, start=start, minutes=minutes, reported=reported
        )

    def transfer(self, amount: str, *, minutes_ago: float = 3) -> Event:
        event = f.transfer(
            self.victim,
            payer_account=self.payer_account,
            payee_account=self.payee_account,
            amount=amount,
            at=NOW - timedelta(minutes=minutes_ago),
            payee_bank=self.payee_bank,
        )
        return "bank-a", event


def scene(payee_account: str | None = None) -> Scene:
    return Scene(f.phone(), f.phone(), f.account("V"), payee_account or f.account("M"))


@dataclass
class Known:
    """What the blocklist service and mule reports would tell the scorer (our FraudKnowledge protocol)."""

    numbers: set[str] = field(default_factory=set)
    mules: set[tuple[str, str]] = field(default_factory=set)

    def is_blocked_number(self, number: str) -> bool:
        return number in self.numbers

    def is_known_mule(self, institution: str, account: str) -> bool:
        return (institution, account) in self.mules


def stage(
    model_dir: Path, knowledge: Known | None = None, *, cold: bool = False, **settings: Any
) -> AccountStage:
    """An account stage whose model slot is built from its settings as the scorer builds it."""
    # Warm-up 0: the state counts as covering the feature windows from its first event.
    s = ScorerSettings(model_dir=model_dir, model_warmup_hours=24 if cold else 0, **settings)
    slot = ModelSlot(s.model_dir, version=s.model, threshold=s.model_alert_threshold)
    return AccountStage(
        s, unused_producer(), prefix="", version="t", model=slot, knowledge=knowledge or Known()
    )


def score(account_stage: AccountStage, moves: list[Movement]) -> tuple[list[Alert], list[Pending]]:
    """The movements through the stage's state in order (an outflow counts on the paying account: what
    the payee accounts paid out, and which institutions report outflows) and the inflows in its one
    model call: the alerts and what was scored."""
    accounts = account_stage.accounts.setdefault(0, Book())
    pending = []
    for m in moves:
        if m.direction == "out":
            account_stage._outflow(accounts, m)
        elif (p := account_stage._inflow(0, accounts, m, 0)) is not None:
            pending.append(p)
    return [a for a, _ in account_stage._score(pending)], pending
