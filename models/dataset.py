"""From simulated events to a labelled feature table, by replaying them offline through the very feature
code the live scorer runs (`models.features.engine`), in the order institutions report them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from models.features.account import AccountState
from models.features.engine import PersonOutcome, account, apply_person_event
from models.features.person import PersonState
from models.features.vector import FEATURE_NAMES
from models.table import FeatureTable
from services.simulator.model import SimEvent
from services.simulator.offline import Truth
from streams.schemas.events import event_adapter

HORIZON_S = 7 * 86_400.0  # the live scorer's default state horizon


@dataclass
class Replay:
    """The two stages' state, in one process: people by phone, accounts by `institution/account`."""

    people: dict[str, PersonState] = field(default_factory=dict)
    accounts: dict[str, AccountState] = field(default_factory=dict)
    rows: list[list[float]] = field(default_factory=list)
    meta: list[tuple[str, float, float]] = field(default_factory=list)  # (ref, scored_at, occurred_at)

    def event(self, reported_at: float, sim: SimEvent) -> None:
        event = event_adapter.validate_python(sim.body)
        for outcome in apply_person_event(self.people, sim.institution, event, sim.ref, HORIZON_S):
            self.rows.append(outcome.features + self.movement(outcome))
            self.meta.append((outcome.money.ref, reported_at, outcome.money.at))

    def movement(self, outcome: PersonOutcome) -> list[float]:
        """Stage two: count the money at both accounts (once), return the payee's features."""
        money = outcome.money
        payee = account(self.accounts, money.payee)
        if not outcome.rescore:
            payee.record_in(money.at, f"{money.institution}/{money.account}", money.amount, money.ref)
            payer = account(self.accounts, f"{money.institution}/{money.account}")
            payer.record_out(money.at, money.payee, money.amount, money.ref)
        return payee.payee_features(money.at)


def build_table(
    events: Iterable[tuple[float, SimEvent]], truth: Truth, *, burn_in_until: float
) -> FeatureTable:
    """Replay everything (state warms up from the start) and keep rows scored after `burn_in_until`.
    Transfers between mule accounts are left out: they are neither a victim's loss nor ordinary life."""
    replay = Replay()
    for reported_at, sim in events:
        replay.event(reported_at, sim)
    keep = [
        i
        for i, (ref, scored, _) in enumerate(replay.meta)
        if scored >= burn_in_until and truth.role.get(ref, ("", "", "normal"))[2] != "mule"
    ]
    refs = [replay.meta[i][0] for i in keep]
    roles = [truth.role.get(ref, ("", "", "normal")) for ref in refs]
    return FeatureTable(
        features=FEATURE_NAMES,
        X=np.array([replay.rows[i] for i in keep], dtype=np.float64).reshape(len(keep), len(FEATURE_NAMES)),
        label=np.array([r[2] == "victim" for r in roles], dtype=np.int8),
        scored_at=np.array([replay.meta[i][1] for i in keep]),
        occurred_at=np.array([replay.meta[i][2] for i in keep]),
        event_ref=np.array(refs),
        episode_id=np.array([r[0] for r in roles]),
        typology=np.array([r[1] for r in roles]),
    )
