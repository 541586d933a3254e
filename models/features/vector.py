"""The model's feature vector: person-side features of a money-out followed by its payee's features, and
the hash that names this exact feature set (an artifact built for another set is refused at load); the
direction each feature may push a score (monotonic constraints); and the groups features are told,
ablated and explained by."""

from __future__ import annotations

import hashlib

from models.features.account import PAYEE_FEATURES
from models.features.person import PERSON_FEATURES

# Bump when a feature's meaning changes without its name changing: the hash then changes too.
# 3: wallet top-ups and withdrawals are money movements, sequences, coverage; no hour of day.
# 4: an unknown call then a new payee counts the call's minutes; callers known for two days are known.
# 5: a person's first payment is compared with an everyday payment's size, not with itself.
FEATURE_SET_REVISION = 5
FEATURE_NAMES: tuple[str, ...] = PERSON_FEATURES + PAYEE_FEATURES
FEATURE_SET_HASH = hashlib.sha256(f"{FEATURE_SET_REVISION}|{','.join(FEATURE_NAMES)}".encode()).hexdigest()[
    :16
]

# Where the direction is known, more of the feature may only raise the score (+1) or only lower it (-1):
# an innocuous fact (a known payee, an old SIM card) then cannot raise a score. The rest are free.
MONOTONIC: dict[str, int] = {
    "payee_new": 1,
    "payee_prior_count": -1,
    "caller_unknown": 1,
    "caller_reported": 1,
    "caller_international": 1,
    "caller_virtual_operator": 1,
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
    "payee_payers_24h": 1,
    "payee_payout_ratio_24h": 1,
    "payee_minutes_money_rests": -1,
    "payee_paid_payer_24h": 1,
    "payee_active_hours": -1,
}

# Who reports what: the ablations train on one side only, and the reasons are told by group.
TELECOM = (
    "call_present",
    "call_duration_min",
    "caller_unknown",
    "caller_reported",
    "caller_international",
    "caller_virtual_operator",
    "minutes_call_end_to_transfer",
    "unknown_calls_24h",
    "long_unknown_calls_7d",
    "reported_calls_7d",
    "link_sms_7d",
    "hours_since_sim_change",
    "telecom_seen",
)
SEQUENCES = (
    "seq_unknown_call_new_payee",
    "seq_link_new_device_payment",
    "seq_sim_change_payment",
    "seq_topup_new_payee",
)
AMOUNTS = (
    "amount_log10",
    "amount_vs_typical",
    "to_payee_24h_sum_log10",
    "outs_1h_sum_log10",
    "outs_24h_sum_log10",
    "payee_received_24h_log10",
    "payee_paid_out_24h_log10",
)
BANK = tuple(f for f in FEATURE_NAMES if f not in TELECOM and f not in SEQUENCES)


def monotonic_constraints(features: tuple[str, ...] = FEATURE_NAMES) -> list[int]:
    return [MONOTONIC.get(f, 0) for f in features]
