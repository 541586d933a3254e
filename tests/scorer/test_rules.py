"""Rules and thresholds: what scores, what does not, and which actions a score maps to."""

from __future__ import annotations

import pytest

from services.scorer.rules import MuleFanIn, actions_for
from services.scorer.settings import ScorerSettings

SETTINGS = ScorerSettings()


def mule(**overrides: float) -> dict[str, float]:
    base = {
        "distinct_payers_1h": 14.0,
        "received_1h_sum": 90_000.0,
        "paid_out_1h_sum": 85_000.0,
        "payout_ratio": 0.94,
        "minutes_money_rests": 7.0,
        "minutes_money_rested": 25.0,
        "distinct_payees_1h": 2.0,
    }
    return {**base, **overrides}


def test_mule_fan_in_reason_is_in_plain_words():
    finding = MuleFanIn(SETTINGS).score(mule())
    assert finding is not None
    assert finding.reasons[0].startswith(
        "the account received money from 14 different people in the last hour"
    )
    assert "paid out 94% of it within 7 minutes" in finding.reasons[1]


def test_thresholds_are_settings():
    strict = ScorerSettings(mule_min_payers=20)
    assert MuleFanIn(strict).score(mule()) is None


@pytest.mark.parametrize(
    "change",
    [
        {"distinct_payers_1h": 4.0},
        {"payout_ratio": 0.3},
        # A shop collects all day and pays its supplier at night: the money rested for hours.
        {"minutes_money_rested": 9 * 60.0},
    ],
)
def test_mule_needs_fan_in_and_fast_payout(change):
    assert MuleFanIn(SETTINGS).score(mule(**change)) is None


@pytest.mark.parametrize(
    ("score", "victim", "expected"),
    [
        (0.05, True, ["warn_citizen"]),  # a likely victim is always warned
        (0.62, True, ["warn_citizen"]),
        (0.8, True, ["warn_citizen", "notify_police"]),
        (0.9, True, ["warn_citizen", "notify_police", "recommend_stop_payment"]),
        (0.7, False, ["notify_police"]),
        (0.9, False, ["notify_police", "recommend_stop_payment"]),
    ],
)
def test_score_maps_to_actions_by_thresholds(score, victim, expected):
    assert actions_for(score, SETTINGS, victim_known=victim) == expected
