"""One run's world: the parameters of ordinary life and of coverage, drawn from wide ranges (RANGES) by the
run's seed, so that a model trained on one run meets other paces, amounts, habits and gaps in coverage
when it is tested on another. docs/simulator.md describes each parameter.

Coverage is partial, as it is in practice: `silent` names the institutions that report nothing (their
customers' events, and the outflows of accounts they hold, never reach Stopline)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from services.simulator.model import ALWAYS_REPORTING, INSTITUTIONS

# (low, high) of each parameter; rates of the hard negatives are per 1,000 people per day.
RANGES: dict[str, tuple[float, float]] = {
    "events_per_person_day": (20.0, 30.0),
    "pace_sigma": (0.3, 0.7),  # spread of people's own pace (log-normal, mean 1)
    "weekend_factor": (0.75, 1.1),  # activity on Saturday and Sunday against a weekday
    "amount_median": (150.0, 600.0),  # CNY, an ordinary transfer
    "amount_sigma": (0.9, 1.4),
    "stranger_call_share": (0.10, 0.25),  # calls from numbers that are not the person's contacts
    "long_stranger_call_share": (0.01, 0.05),  # of those: 5 minutes or longer
    "stranger_link_share": (0.05, 0.25),  # SMS from strangers that carry a link (deliveries, notices)
    "new_payee_share": (0.08, 0.18),  # transfers to someone the person never paid
    "silent_share": (0.15, 0.35),  # institutions that report nothing
}
# Of a wallet holder's payments to a person or business (ordinary transfers, the hard negatives' money):
# the share paid from the wallet rather than the bank, as person-to-person wallet payments are common.
# Drawn from its own stream so that the other parameters of a seed stay as they were.
WALLET_SHARE_RANGE = (0.2, 0.6)
# Of the one-off payees of ordinary life (a car's seller, a flat's deposit, the hospital a stranger's call was
# about): the share that are accounts nobody in the world paid before, as a private seller's or an account at
# a bank Stopline never hears from is; the rest are businesses many people pay. Its own stream too.
FRESH_PAYEE_SHARE_RANGE = (0.3, 0.9)
BENIGN_RATES: dict[str, tuple[float, float]] = {
    "stranger_call_payment": (3.0, 8.0),
    "large_first_transfer": (1.0, 5.0),
    "landlord_fan_in": (0.6, 1.2),
    "shop_fan_in": (1.0, 2.0),
    "payroll": (0.4, 0.8),
    "group_purchase": (0.6, 1.2),
    "new_phone": (1.0, 3.0),
    "benign_link_sms": (3.0, 8.0),
}


@dataclass(frozen=True)
class World:
    seed: int
    events_per_person_day: float
    pace_sigma: float
    weekend_factor: float
    amount_median: float
    amount_sigma: float
    stranger_call_share: float
    long_stranger_call_share: float
    stranger_link_share: float
    new_payee_share: float
    silent_share: float
    wallet_share: float = 0.0
    fresh_payee_share: float = 0.0
    benign_rates: dict[str, float] = field(default_factory=dict)
    silent: frozenset[str] = frozenset()

    @classmethod
    def draw(cls, seed: int, *, silent_share: float | None = None) -> World:
        """The world of run `seed`; `silent_share` fixes the share of institutions that report nothing."""
        rng = random.Random(f"world:{seed}")
        values = {name: rng.uniform(low, high) for name, (low, high) in RANGES.items()}
        if silent_share is not None:
            values["silent_share"] = silent_share
        rates = {
            kind: math.exp(rng.uniform(math.log(low), math.log(high)))
            for kind, (low, high) in BENIGN_RATES.items()
        }
        optional = sorted(set(INSTITUTIONS) - set(ALWAYS_REPORTING))
        count = min(round(values["silent_share"] * len(INSTITUTIONS)), len(optional))
        silent = frozenset(rng.sample(optional, count))
        wallet_share = random.Random(f"world-wallet:{seed}").uniform(*WALLET_SHARE_RANGE)
        fresh_payee_share = random.Random(f"world-fresh:{seed}").uniform(*FRESH_PAYEE_SHARE_RANGE)
        return cls(
            seed=seed,
            benign_rates=rates,
            silent=silent,
            wallet_share=wallet_share,
            fresh_payee_share=fresh_payee_share,
            **values,
        )

    def reports(self, institution: str) -> bool:
        return institution not in self.silent

    def describe(self) -> dict[str, object]:
        """The run's parameters for a report or a model card."""
        out: dict[str, object] = {name: round(float(getattr(self, name)), 3) for name in RANGES}
        out["wallet_share"] = round(self.wallet_share, 3)
        out["fresh_payee_share"] = round(self.fresh_payee_share, 3)
        out["benign_rates_per_1000_people_day"] = {k: round(v, 2) for k, v in self.benign_rates.items()}
        out["silent_institutions"] = sorted(self.silent)
        return out
