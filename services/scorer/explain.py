"""Reasons in words: which groups of features pushed a money-out's score up, told as an operator reads.

Attribution by occlusion: a group's contribution is how much the score falls when its features are set
to their typical values in ordinary traffic (from the model card). It is honest about this model and
this event, and cheap (one small batch per alerted event); it is not a causal claim, and correlated
groups can share credit. The top groups, in order, become the alert's reasons."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.features.vector import FEATURE_NAMES

F = dict[str, float]
INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
MAX_REASONS = 4


def money(amount: float) -> str:
    return f"{amount:,.0f} CNY"


def _amount(f: F) -> float:
    return 10 ** f["amount_log10"]


def _call(f: F) -> str | None:
    if not f["call_present"]:
        return None
    if f["caller_reported"]:
        who = "a number reported for fraud"
    elif f["caller_unknown"]:
        who = "a number that had never called before"
    else:
        who = "a known number"
    kinds = [
        k
        for k, on in (
            ("international", f["caller_international"]),
            ("virtual-operator", f["caller_virtual_operator"]),
        )
        if on
    ]
    if kinds:
        who += f" ({' '.join(kinds)})"
    gap = f["minutes_call_end_to_transfer"]
    when = "during the call" if gap < 0 else f"{gap:.0f} min after the call ended"
    return f"the person had a {f['call_duration_min']:.0f}-minute call from {who} and paid {when}"


def _payee(f: F) -> str:
    if f["payee_new"]:
        return f"{money(_amount(f))} went to a payee this person had never paid"
    return (
        f"{money(_amount(f))} to a payee paid {f['payee_prior_count']:.0f} times before, "
        f"{10 ** f['to_payee_24h_sum_log10'] - 1:,.0f} CNY to it in 24 h"
    )


def _amount_reason(f: F) -> str:
    times = 10 ** f["amount_vs_typical"]
    if f["prior_money_outs"] and times >= 2:
        return f"{money(_amount(f))} is {times:.0f} times this person's typical payment"
    return f"a large payment: {money(_amount(f))}"


def _count(n: float, noun: str) -> str:
    """ "1 payment", "3 payments": operators read these sentences."""
    return f"{n:.0f} {noun}" if round(n) == 1 else f"{n:.0f} {noun}s"


def _people(n: float) -> str:
    return "1 person" if round(n) == 1 else f"{n:.0f} different people"


def _fan_in(f: F) -> str:
    if f["payee_payers_1h"] >= 2:
        return f"the payee account received money from {_people(f['payee_payers_1h'])} in the last hour"
    return f"the payee account received money from {_people(f['payee_payers_24h'])} in the last 24 h"


def _rests(f: F) -> str:
    if f["payee_minutes_money_rests"] >= 1440:
        return "the payee account has not paid money on"
    return (
        f"money rests about {max(f['payee_minutes_money_rests'], 1):.0f} min in the payee account before it "
        f"moves on ({100 * f['payee_payout_ratio_24h']:.0f}% paid out in 24 h)"
    )


def _velocity(f: F) -> str:
    total = money(10 ** f["outs_1h_sum_log10"] - 1)
    return (
        f"{_count(f['outs_1h_count'], 'payment')} totalling {total} in the last hour, "
        f"{_count(f['new_payees_24h'], 'new payee')} in 24 h"
    )


def _contacts(f: F) -> str:
    parts = []
    if f["link_sms_7d"]:
        parts.append(f"{f['link_sms_7d']:.0f} SMS with links from unknown senders this week")
    if f["long_unknown_calls_7d"]:
        parts.append(f"{_count(f['long_unknown_calls_7d'], 'long call')} from unknown numbers this week")
    if f["reported_calls_7d"]:
        parts.append(f"{_count(f['reported_calls_7d'], 'call')} from reported numbers this week")
    return "; ".join(parts) or f"{_count(f['unknown_calls_24h'], 'call')} from unknown numbers in 24 h"


def _device(f: F) -> str:
    parts = [
        p
        for p, on in (
            ("a new device logged in", f["new_device_24h"]),
            ("the SIM card changed", f["sim_change_24h"]),
        )
        if on
    ]
    return " and ".join(parts) + " within 24 h" if parts else "no device change"


def _history(f: F) -> str:
    return f"little history for this person ({_count(f['prior_money_outs'], 'earlier payment')})"


def _hour(f: F) -> str:
    return f"at {f['hour_of_day']:.0f}:00 local time"


GROUPS: list[tuple[tuple[str, ...], Callable[[F], str | None]]] = [
    (
        (
            "call_present",
            "call_duration_min",
            "caller_unknown",
            "caller_reported",
            "caller_international",
            "caller_virtual_operator",
            "minutes_call_end_to_transfer",
        ),
        _call,
    ),
    (("payee_new", "payee_prior_count", "to_payee_24h_sum_log10"), _payee),
    (("amount_log10", "amount_vs_typical"), _amount_reason),
    (
        (
            "payee_payers_10m",
            "payee_payers_1h",
            "payee_payers_24h",
            "payee_inflows_24h",
            "payee_received_24h_log10",
        ),
        _fan_in,
    ),
    (
        (
            "payee_paid_out_24h_log10",
            "payee_payout_ratio_24h",
            "payee_minutes_money_rests",
            "payee_payees_24h",
        ),
        _rests,
    ),
    (
        (
            "outs_10m_count",
            "outs_1h_count",
            "outs_1h_sum_log10",
            "outs_24h_count",
            "outs_24h_sum_log10",
            "new_payees_24h",
        ),
        _velocity,
    ),
    (("unknown_calls_24h", "long_unknown_calls_7d", "reported_calls_7d", "link_sms_7d"), _contacts),
    (("sim_change_24h", "new_device_24h"), _device),
    (("prior_money_outs", "wallet_payment"), _history),
    (("hour_of_day",), _hour),
]
_GROUP_INDEX = [np.array([INDEX[n] for n in names]) for names, _ in GROUPS]


def reasons(
    rows: np.ndarray, scores: np.ndarray, typical: np.ndarray, score: Callable[[np.ndarray], np.ndarray]
) -> list[list[str]]:
    """For each row (an alerted money-out), its reasons: the groups whose typical values lower the score
    most, best first, in words; at least one reason per row."""
    n, g = len(rows), len(GROUPS)
    probes = np.repeat(rows, g, axis=0)
    for k, index in enumerate(_GROUP_INDEX):
        probes[k::g, index] = typical[index]
    drops = scores[:, None] - score(probes).reshape(n, g)
    out = []
    for row, drop in zip(rows, drops, strict=True):
        f = {name: float(row[i]) for name, i in INDEX.items()}
        said: list[str] = []
        for k in np.argsort(-drop):
            if drop[k] <= 0 or len(said) >= MAX_REASONS:
                break
            text = GROUPS[k][1](f)
            if text:
                said.append(text)
        out.append(said or [_payee(f)])
    return out
