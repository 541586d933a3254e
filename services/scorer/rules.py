"""The rule-based score of mule fan-in (the trained model scores the victim side), with reasons in
words an operator understands, and the thresholds that map a score to actions.

A rule takes the feature values of `models.features` and returns a Finding or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.scorer.explain import money
from services.scorer.settings import ScorerSettings


@dataclass(frozen=True)
class Finding:
    score: float
    reasons: list[str]


class Rule(Protocol):
    def score(self, features: dict[str, float]) -> Finding | None: ...


class MuleFanIn:
    """An account receiving from many unrelated payers and paying most of it out fast."""

    def __init__(self, settings: ScorerSettings) -> None:
        self.s = settings

    def score(self, f: dict[str, float]) -> Finding | None:
        payers = f["distinct_payers_1h"]
        if payers < self.s.mule_min_payers or f["payout_ratio"] < self.s.mule_min_payout_ratio:
            return None
        if f["minutes_money_rested"] > self.s.mule_max_rest_minutes:
            return None
        score = (
            0.55
            + min(0.03 * (payers - self.s.mule_min_payers), 0.2)
            + 0.2 * f["payout_ratio"]
            + 0.05 * (f["minutes_money_rests"] <= 30)
        )
        reasons = [
            f"the account received money from {payers:.0f} different people in the last hour "
            f"({money(f['received_1h_sum'])})",
            f"it paid out {f['payout_ratio']:.0%} of it within "
            f"{max(f['minutes_money_rests'], 1):.0f} minutes "
            f"to {f['distinct_payees_1h']:.0f} account(s)",
        ]
        return Finding(score=round(min(score, 0.99), 3), reasons=reasons)


def actions_for(score: float, settings: ScorerSettings, *, victim_known: bool) -> list[str]:
    """Map a score to recommended actions by the configured thresholds. An alert about a likely victim
    always warns them (a warning is cheap and may save the money); police and stop-payment need more."""
    actions = []
    if victim_known:
        actions.append("warn_citizen")
    if score >= settings.police_threshold or not victim_known:
        actions.append("notify_police")
    if score >= settings.stop_payment_threshold:
        actions.append("recommend_stop_payment")
    return actions
