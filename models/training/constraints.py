"""The model's monotonic constraints: where the direction is known, more of a feature may only raise the
score (+1) or only lower it (-1), so an innocuous fact (a known payee, an old SIM card) cannot raise a score.

They are the model's, not the features': the training table is kept by the code of the features and the
simulator (`cached`), and changing a constraint does not simulate the training world again."""

from __future__ import annotations

from models.features.vector import FEATURE_NAMES

# The rest are free; so is the payee's count of payers over a day, which a landlord's, a shop's or a
# school's account collects too (many payers in minutes is a mule's fan-in; over a day, only when the money
# moves on).
MONOTONIC: dict[str, int] = {
    "payee_new": 1,
    "payee_prior_count": -1,
    "payee_first_paid_h": -1,
    "amount_vs_last_to_payee": 1,
    "to_recent_payees_7d_sum_log10": 1,
    "caller_unknown": 1,
    "caller_reported": 1,
    "caller_international": 1,
    "caller_virtual_operator": 1,
    # Offices, hospitals and banks call from landlines and service numbers; a fraud call may spoof one, so
    # the model may trust it less, never more.
    "caller_fixed_line": -1,
    "long_unknown_calls_7d": 1,
    "reported_calls_7d": 1,
    "link_sms_7d": 1,
    "hours_since_sim_change": -1,
    "hours_since_new_device": -1,
    "seq_unknown_call_new_payee": 1,
    "seq_link_new_device_payment": 1,
    "seq_sim_change_payment": 1,
    "seq_topup_new_payee": 1,
    "payee_payers_10m": 1,
    "payee_payers_1h": 1,
    "payee_payout_ratio_24h": 1,
    "payee_minutes_money_rests": -1,
    "payee_paid_payer_24h": 1,
    "payee_active_hours": -1,
}


def monotonic_constraints(features: tuple[str, ...] = FEATURE_NAMES) -> list[int]:
    return [MONOTONIC.get(f, 0) for f in features]
