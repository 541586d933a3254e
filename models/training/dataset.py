"""From simulated events to a labelled feature table, by replaying them offline through the very feature
code the live scorer runs (`models.features.engine`), in the order institutions report them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from models.features.account import AccountState, Reporters
from models.features.engine import PersonOutcome, WalletFlow, account, apply_person_event
from models.features.person import PersonState
from models.features.vector import FEATURE_NAMES
from models.training.table import FeatureTable
from services.simulator.model import SimEvent
from services.simulator.offline import Truth
from streams.schemas.events import EventBase, event_adapter

HORIZON_S = 7 * 86_400.0  # the live scorer's default state horizon
BENIGN = "benign:"  # the typology column of a hard negative's money-out: "benign:<kind>" (label 0)


@dataclass(frozen=True)
class Observation:
    """When the replayed scorer starts watching each person. A live scorer knows a person only since it
    was deployed (or since its state was lost), so a `late_share` of people are first watched at a random
    moment of the period: the model then meets short histories in training too, and does not read
    "little history" as "scam". Drawn from a hash of the phone, independent of any label."""

    start: float
    span_s: float
    late_share: float = 0.5
    seed: int = 7

    def since(self, phone: str) -> float:
        digest = hashlib.sha256(f"observe:{self.seed}:{phone}".encode()).digest()
        late, when = (int.from_bytes(digest[i : i + 8], "big") / 2**64 for i in (0, 8))
        return self.start + when * self.span_s if late < self.late_share else self.start


@dataclass
class Replay:
    """The two stages' state, in one process: people by phone, accounts by `institution/account`."""

    observe: Observation | None = None
    people: dict[str, PersonState] = field(default_factory=dict)
    accounts: dict[str, AccountState] = field(default_factory=dict)
    reporters: Reporters = field(default_factory=Reporters)
    rows: list[list[float]] = field(default_factory=list)
    # Per row: (money-out ref, scored at, occurred at, payer's phone, payee "institution/account").
    meta: list[tuple[str, float, float, str, str]] = field(default_factory=list)

    def event(self, reported_at: float, sim: SimEvent) -> None:
        self.apply(reported_at, sim.institution, event_adapter.validate_python(sim.body), sim.ref)

    def apply(self, reported_at: float, institution: str, event: EventBase, ref: str) -> None:
        if self.observe is not None and reported_at < self.observe.since(event.person_phone):
            return  # not watched yet: the scorer never saw it
        for outcome in apply_person_event(self.people, institution, event, ref, HORIZON_S):
            if isinstance(outcome, WalletFlow):
                self.wallet(outcome)
                continue
            money = outcome.money
            self.rows.append(outcome.features + self.movement(outcome))
            self.meta.append((money.ref, reported_at, money.at, outcome.person_phone, money.payee))

    def movement(self, outcome: PersonOutcome) -> list[float]:
        """Stage two: count the money at both accounts (once), return the payee's features."""
        money = outcome.money
        payee = account(self.accounts, money.payee)
        payer_key = f"{money.institution}/{money.account}"
        if not outcome.rescore:
            payee.record_in(money.at, payer_key, money.amount, money.ref)
            payer = account(self.accounts, payer_key)
            if payer.record_out(money.at, money.payee, money.amount, money.ref):
                self.reporters.saw(money.institution, money.at)
        seen = self.reporters.reports(money.payee_institution, money.at)
        return payee.payee_features(money.at, payer_key, seen)

    def wallet(self, flow: WalletFlow) -> None:
        state = account(self.accounts, f"{flow.institution}/{flow.account}")
        other = f"unknown/{flow.counterparty}"
        if flow.direction == "in":
            state.record_in(flow.at, other, flow.amount, flow.ref)
        elif state.record_out(flow.at, other, flow.amount, flow.ref):
            self.reporters.saw(flow.institution, flow.at)


@dataclass
class Dataset:
    """A feature table and, per row, who paid whom (to count alerts per person as the scorer raises
    them: one per episode)."""

    table: FeatureTable
    person: np.ndarray  # the payer's phone
    payee: np.ndarray  # "institution/account"

    def subset(self, mask: np.ndarray) -> Dataset:
        return Dataset(self.table.subset(mask), self.person[mask], self.payee[mask])


def build_dataset(
    events: Iterable[tuple[float, SimEvent]],
    truth: Truth,
    *,
    burn_in_until: float,
    observe: Observation | None = None,
) -> Dataset:
    """Replay everything (state warms up from the start, or from each person's `observe` time) and keep
    rows scored after `burn_in_until`. Transfers between mule accounts are left out: they are neither a
    victim's loss nor ordinary life."""
    replay = Replay(observe)
    for reported_at, sim in events:
        replay.event(reported_at, sim)
    return dataset_of(replay, truth, burn_in_until=burn_in_until)


class Rows(Protocol):
    rows: list[list[float]]
    meta: list[tuple[str, float, float, str, str]]


def dataset_of(replay: Rows, truth: Truth, *, burn_in_until: float) -> Dataset:
    normal = ("", "", "normal")
    keep = [
        i
        for i, (ref, scored, *_) in enumerate(replay.meta)
        if scored >= burn_in_until and truth.role.get(ref, normal)[2] != "mule"
    ]
    refs = [replay.meta[i][0] for i in keep]
    roles = [truth.role.get(ref, normal) for ref in refs]
    table = FeatureTable(
        features=FEATURE_NAMES,
        X=np.array([replay.rows[i] for i in keep], dtype=np.float64).reshape(len(keep), len(FEATURE_NAMES)),
        label=np.array([r[2] == "victim" for r in roles], dtype=np.int8),
        scored_at=np.array([replay.meta[i][1] for i in keep]),
        occurred_at=np.array([replay.meta[i][2] for i in keep]),
        event_ref=np.array(refs),
        episode_id=np.array([r[0] for r in roles]),
        typology=np.array([f"{BENIGN}{r[1]}" if r[2] == "benign" else r[1] for r in roles]),
    )
    return Dataset(
        table,
        np.array([replay.meta[i][3] for i in keep]),
        np.array([replay.meta[i][4] for i in keep]),
    )


def build_table(
    events: Iterable[tuple[float, SimEvent]],
    truth: Truth,
    *,
    burn_in_until: float,
    observe: Observation | None = None,
) -> FeatureTable:
    return build_dataset(events, truth, burn_in_until=burn_in_until, observe=observe).table
