"""First, rule-based scores for the two typologies, with reasons in words an operator understands.

Each rule takes the feature values of `models.features` and returns a Finding or None. A trained
model replaces a rule by offering the same `score(features) -> Finding | None`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.scorer.settings import ScorerSettings


@dataclass(frozen=True)
class Finding:
    score: float
    reasons: list[str]


class Rule(Protocol):
    def score(self, features: dict[str, float]) -> Finding | None: ...


def _money(amount: float) -> str:
    return f"{amount:,.0f} CNY"


class CallThenTransfer:
    """A long call from an unknown or reported number, then a large payment to a new payee."""

    def __init__(self, settings: ScorerSettings) -> None:
        self.s = settings

    def score(self, f: dict[str, float]) -> Finding | None:
        if not f["call_present"] or not f["payee_new"] or f["amount"] < self.s.large_amount:
            return None
        if (
            not (f["caller_unknown"] or f["caller_reported"])
            or f["call_duration_min"] < self.s.min_call_minutes
        ):
            return None
        gap = f["minutes_call_end_to_transfer"]
        score = (
            0.55
            + 0.15 * f["caller_reported"]
            + 0.10 * min(f["call_duration_min"] / 30, 1)
            + 0.10 * min(f["amount"] / 50_000, 1)
            + 0.05 * f["caller_international"]
            + 0.05 * (gap <= 10)
        )
        who = (
            "a number reported for fraud" if f["caller_reported"] else "a number that had never called before"
        )
        when = "during the call" if gap < 0 else f"{gap:.0f} min after the call ended"
        reasons = [
            f"the person had a {f['call_duration_min']:.0f}-minute call from {who}",
            f"then sent {_money(f['amount'])} to a payee they had never paid, {when}",
        ]
        if f["caller_international"]:
            reasons.append("the caller's number is international")
        if f["transfers_1h_count"] > 1:
            reasons.append(
                f"{f['transfers_1h_count']:.0f} payments totalling {_money(f['transfers_1h_sum'])} "
                "in the last hour"
            )
        return Finding(score=round(min(score, 0.99), 3), reasons=reasons)


class MuleFanIn:
    """An account receiving from many unrelated payers and paying most of it out fast."""

    def __init__(self, settings: ScorerSettings) -> None:
        self.s = settings

    def score(self, f: dict[str, float]) -> Finding | None:
        payers = f["distinct_payers_1h"]
        if payers < self.s.mule_min_payers or f["payout_ratio"] < self.s.mule_min_payout_ratio:
            return None
        score = (
            0.55
            + min(0.03 * (payers - self.s.mule_min_payers), 0.2)
            + 0.2 * f["payout_ratio"]
            + 0.05 * (f["minutes_money_rests"] <= 30)
        )
        reasons = [
            f"the account received money from {payers:.0f} different people in the last hour "
            f"({_money(f['received_1h_sum'])})",
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
