"""The model's feature vector: person-side features of a money-out followed by its payee's features, and
the hash that names this exact feature set (an artifact built for another set is refused at load); and the
groups features are told, ablated and explained by."""

from __future__ import annotations

import hashlib

from models.features.account import PAYEE_FEATURES
from models.features.person import PERSON_FEATURES

# Bump when a feature's meaning changes without its name changing: the hash then changes too.
# 3: wallet top-ups and withdrawals are money movements, sequences, coverage; no hour of day.
# 4: an unknown call then a new payee counts the call's minutes; callers known for two days are known.
# 5: a person's first payment is compared with an everyday payment's size, not with itself.
# 6: a payee's relationship (first paid when, the step from the last payment), money to new payees a week.
# 7: whether the caller is a domestic landline or service number.
FEATURE_SET_REVISION = 7
FEATURE_NAMES: tuple[str, ...] = PERSON_FEATURES + PAYEE_FEATURES
FEATURE_SET_HASH = hashlib.sha256(f"{FEATURE_SET_REVISION}|{','.join(FEATURE_NAMES)}".encode()).hexdigest()[
    :16
]

# Who reports what: the ablations train on one side only, and the reasons are told by group.
TELECOM = (
    "call_present",
    "call_duration_min",
    "caller_unknown",
    "caller_reported",
    "caller_international",
    "caller_virtual_operator",
    "caller_fixed_line",
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
    "amount_vs_last_to_payee",
    "to_recent_payees_7d_sum_log10",
    "to_payee_24h_sum_log10",
    "outs_1h_sum_log10",
    "outs_24h_sum_log10",
    "payee_received_24h_log10",
    "payee_paid_out_24h_log10",
)
BANK = tuple(f for f in FEATURE_NAMES if f not in TELECOM and f not in SEQUENCES)
