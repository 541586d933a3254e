"""Rules and thresholds: what scores, what does not, and which actions a score maps to."""

from __future__ import annotations

import pytest

from services.scorer.rules import CallThenTransfer, MuleFanIn, actions_for
from services.scorer.settings import ScorerSettings

SETTINGS = ScorerSettings()


def scam(**overrides: float) -> dict[str, float]:
    base = {
        "amount": 30_000.0,
        "payee_new": 1.0,
        "call_present": 1.0,
        "call_duration_min": 30.0,
        "caller_unknown": 1.0,
        "caller_reported": 0.0,
        "caller_international": 0.0,
        "minutes_call_end_to_transfer": 4.0,
        "transfers_1h_count": 1.0,
        "transfers_1h_sum": 30_000.0,
        "new_payees_24h": 1.0,
        "sim_change_24h": 0.0,
        "new_device_24h": 0.0,
        "hour_of_day": 14.0,
    }
    return {**base, **overrides}


def test_call_then_transfer_scores_with_reasons():
    finding = CallThenTransfer(SETTINGS).score(scam())
    assert finding is not None and finding.score >= SETTINGS.alert_threshold
    assert finding.reasons[0] == "the person had a 30-minute call from a number that had never called before"
    assert "30,000 CNY" in finding.reasons[1]


@pytest.mark.parametrize(
    "change",
    [
        {"payee_new": 0.0},
        {"call_present": 0.0},
        {"caller_unknown": 0.0},
        {"amount": 4999.0},
        {"call_duration_min": 4.0},
    ],
)
def test_call_then_transfer_needs_every_element(change):
    assert CallThenTransfer(SETTINGS).score(scam(**change)) is None


def test_reported_caller_raises_the_score():
    plain = CallThenTransfer(SETTINGS).score(scam())
    reported = CallThenTransfer(SETTINGS).score(scam(caller_reported=1.0, caller_unknown=0.0))
    assert plain is not None and reported is not None
    assert reported.score > plain.score
    assert "reported for fraud" in reported.reasons[0]


def test_thresholds_are_settings():
    strict = ScorerSettings(large_amount=100_000)
    assert CallThenTransfer(strict).score(scam()) is None


def mule(**overrides: float) -> dict[str, float]:
    base = {
        "distinct_payers_1h": 14.0,
        "received_1h_sum": 90_000.0,
        "paid_out_1h_sum": 85_000.0,
        "payout_ratio": 0.94,
        "minutes_money_rests": 7.0,
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


@pytest.mark.parametrize("change", [{"distinct_payers_1h": 4.0}, {"payout_ratio": 0.3}])
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
