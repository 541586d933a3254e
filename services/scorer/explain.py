"""Reasons in words: the facts that raised this money-out's score most, told as an operator reads them.

The model attributes each row's raw score to its features (`models.model.Path`: the contributions add up
exactly to the score's departure from the model's expected score); features that describe one fact are
summed into a group, and the groups that raised the score, strongest first, become the reasons. A group
that lowered the score or left it unchanged is never said, nor is a fact its words cannot state (a call
that did not happen, whether an operator or an institution reports at all, a single payer or inflow into
the payee: the payment scored). A said group's sentence states every part whose own contribution raised
the score, and only those: a group raised by the amount, while the amount's ratio to the person's typical
payment lowered it, is said as a large payment, not as so many times the typical one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from models.features.account import ACTIVE_CAP_H, NEVER_RESTS_MIN
from models.features.person import RELATIONSHIP_CAP_H, SINCE_CAP_H
from models.features.vector import FEATURE_NAMES

F = dict[str, float]
Up = frozenset[str]  # the features whose own contribution raised the score
INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
EVERY: Up = frozenset(FEATURE_NAMES)
MAX_REASONS = 4
MIN_CONTRIBUTION = 0.05  # in log-odds: less than this raised the score by nothing worth saying
STEP_UP = math.log10(1.5)  # a payment this much larger than the last to the payee is worth saying


def named(row: Sequence[float] | np.ndarray) -> F:
    """A feature row as name → value, as the sentences read it."""
    return {name: float(row[i]) for name, i in INDEX.items()}


def money(amount: float) -> str:
    return f"{amount:,.0f} CNY"


LARGE_CNY = 5_000  # a payment said to be large in words (what raised the score is said either way)


def _amount(f: F) -> float:
    return 10 ** f["amount_log10"]


def _count(n: float, noun: str) -> str:
    """ "1 payment", "3 payments": operators read these sentences."""
    return f"{n:.0f} {noun}" if round(n) == 1 else f"{n:.0f} {noun}s"


def _people(n: float) -> str:
    return "1 person" if round(n) == 1 else f"{n:.0f} different people"


def _ago(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 2 else f"{hours:.0f} h"


def _span(hours: float) -> str:
    """ "under a minute", "40 min", "5 h" (never "0 min")."""
    return "under a minute" if hours * 60 < 1 else _ago(hours)


def _since(hours: float) -> str:
    """ "under a minute ago", "40 min ago": how long since a payee was first paid or seen."""
    return f"{_span(hours)} ago"


def _payments(f: F, up: Up, count: str, total: str, alone: str) -> str | None:
    """ "3 payments totalling 45,000 CNY", "3 payments" or the total and `alone`: the parts that raised the
    score."""
    amount = money(10 ** f[total] - 1)
    if count in up:
        return _count(f[count], "payment") + (f" totalling {amount}" if total in up else "")
    return f"{amount}{alone}" if total in up else None


def _call(f: F, up: Up) -> str | None:
    if not f["call_present"]:
        return None
    said = call_reason(f, up)
    return None if said == BARE_CALL and "call_present" not in up else said


def call_reason(f: F, up: Up = EVERY) -> str:
    """The call before the payment, its parts that raised the score (all of them for a hard rule's
    reason, which states the facts that alert whatever the score)."""
    said = "the person had a"
    if "call_duration_min" in up:
        said += f" {f['call_duration_min']:.0f}-minute"
    said += " call"
    if f["caller_reported"] and "caller_reported" in up:
        said += " from a number reported for fraud"
    elif not f["caller_reported"] and "caller_unknown" in up:
        said += (
            " from a number that had never called before" if f["caller_unknown"] else " from a known number"
        )
    # Not a landline raises the score only by what the caller is not: a mobile (an international number
    # says so itself).
    mobile = "caller_fixed_line" in up and not f["caller_fixed_line"] and not f["caller_international"]
    kinds = ["mobile"] if mobile else []
    kinds += [
        k
        for k, name in (
            ("international", "caller_international"),
            ("virtual-operator", "caller_virtual_operator"),
        )
        if f[name] and name in up
    ]
    if kinds:
        said += f"{'' if ' from ' in said else ' from a number'} ({' '.join(kinds)})"
    said += " and paid"
    if f["seq_unknown_call_new_payee"] and "seq_unknown_call_new_payee" in up:
        said += " to a payee never paid before"
    if "minutes_call_end_to_transfer" in up:
        gap = f["minutes_call_end_to_transfer"]
        said += " during the call" if gap < 0 else f" {_span(gap / 60)} after the call ended"
    return said


BARE_CALL = "the person had a call and paid"  # none of the call's details raised the score


def _takeover(f: F, up: Up) -> str | None:
    hours = f["hours_since_new_device"]
    link = bool(f["seq_link_new_device_payment"]) and "seq_link_new_device_payment" in up
    if hours >= SINCE_CAP_H or not (link or "hours_since_new_device" in up):
        return None
    when = f" {_span(hours)}" if "hours_since_new_device" in up else ""
    after = " after an SMS with a link from an unknown sender" if link else ""
    return f"a new device logged in to the account{when} before the payment{after}"


def _sim(f: F, up: Up) -> str | None:
    hours = f["hours_since_sim_change"]
    if hours >= SINCE_CAP_H or not up & {"hours_since_sim_change", "seq_sim_change_payment"}:
        return None
    when = f" {_span(hours)}" if "hours_since_sim_change" in up else ""
    return f"the person's SIM card was changed{when} before the payment"


SIM = ("hours_since_sim_change", "seq_sim_change_payment")
DEVICE = ("hours_since_new_device", "seq_link_new_device_payment")


def takeover_reasons(f: F) -> tuple[list[str], Up]:
    """A hard rule's reasons for a payment after the account was taken over: the SIM change or the link
    SMS and new device's login (a login after the SIM change too), and the payee never paid; and the
    features they state, which the model's reasons do not say again (only those: a SIM change two days
    before a link SMS's login is still the model's to say)."""
    sim = bool(f["seq_sim_change_payment"])
    device = bool(f["seq_link_new_device_payment"]) or (
        sim and f["hours_since_new_device"] <= f["hours_since_sim_change"]
    )
    said, stated = [], {"payee_new"}
    for fires, group, sentence in ((sim, SIM, _sim), (device, DEVICE, _takeover)):
        text = sentence(f, EVERY) if fires else None
        if text:
            said.append(text)
            stated |= set(group)
    return [*said, f"{money(_amount(f))} went to a payee this person had never paid"], frozenset(stated)


def _wallet(f: F, up: Up) -> str | None:
    if f["seq_topup_new_payee"] and "seq_topup_new_payee" in up:
        return "the wallet was topped up from the bank just before paying a payee it never paid"
    if f["wallet_payment"] and "wallet_payment" in up:
        return "the payment was made from a wallet"
    return None


def _payee(f: F, up: Up) -> str | None:
    if f["payee_new"]:
        if "payee_new" in up:
            return f"{money(_amount(f))} went to a payee this person had never paid"
        return None
    parts = []
    if "payee_prior_count" in up:
        parts.append(f"paid {_count(f['payee_prior_count'], 'time')} before")
    hours = f["payee_first_paid_h"]
    if 0 < hours < RELATIONSHIP_CAP_H and "payee_first_paid_h" in up:
        parts.append(f"first paid {_since(hours)}")
    if "to_payee_24h_sum_log10" in up:
        parts.append(f"{10 ** f['to_payee_24h_sum_log10'] - 1:,.0f} CNY to it in 24 h")
    if f["amount_vs_last_to_payee"] >= STEP_UP and "amount_vs_last_to_payee" in up:
        parts.append(f"{10 ** f['amount_vs_last_to_payee']:.1f} times the payment before")
    return f"{money(_amount(f))} to a payee: {', '.join(parts)}" if parts else None


def _amount_reason(f: F, up: Up) -> str | None:
    times = 10 ** f["amount_vs_typical"]
    if f["prior_money_outs"] and times >= 2 and "amount_vs_typical" in up:
        return f"{money(_amount(f))} is {times:.0f} times this person's typical payment"
    if "amount_log10" not in up:
        return None
    if _amount(f) >= LARGE_CNY:
        return f"a large payment: {money(_amount(f))}"
    return f"the amount: {money(_amount(f))}"  # it raised the score, but calling 856 CNY large would mislead


def _fan_in(f: F, up: Up) -> str | None:
    parts = []
    for name, window in (
        ("payee_payers_1h", "hour"),
        ("payee_payers_10m", "10 min"),
        ("payee_payers_24h", "24 h"),
    ):
        if f[name] >= 2 and name in up:
            parts.append(f"money from {_people(f[name])} in the last {window}")
            break
    # Its day's inflows count the payment scored: one of them is no fact beside it, as one payer is not.
    day = _payments(f, up, "payee_inflows_24h", "payee_received_24h_log10", "")
    if day and f["payee_inflows_24h"] >= 2:
        parts.append(f"{day} in 24 h")
    return f"the payee account received {' and '.join(parts)}" if parts else None


def _paid_out(f: F, up: Up) -> str | None:
    """ "12,000 CNY (90%) paid out to 3 accounts in 24 h": the payee's pay-out parts that raised the score."""
    how_much = [money(10 ** f["payee_paid_out_24h_log10"] - 1)] if "payee_paid_out_24h_log10" in up else []
    if "payee_payout_ratio_24h" in up:
        share = f"{100 * f['payee_payout_ratio_24h']:.0f}%"
        how_much.append(f"({share})" if how_much else share)
    to = f" to {_count(f['payee_payees_24h'], 'account')}" if "payee_payees_24h" in up else ""
    return " ".join([*how_much, f"paid out{to} in 24 h"]) if how_much or to else None


def _rests(f: F, up: Up) -> str | None:
    # What the payee pays out is known only where its institution reports outflows.
    paid_out = _paid_out(f, up) if f["payee_outflows_seen"] else None
    hours = f["payee_active_hours"]
    new = f"first seen {_since(hours)}" if hours < ACTIVE_CAP_H and "payee_active_hours" in up else None
    rests = f["payee_minutes_money_rests"]
    if f["payee_outflows_seen"] and rests < NEVER_RESTS_MIN and "payee_minutes_money_rests" in up:
        said = f"money rests about {max(rests, 1):.0f} min in the payee account before it moves on"
        said += f" ({paid_out})" if paid_out else ""
        return said + (f"; the account was {new}" if new else "")
    parts = [p for p in (new, paid_out) if p]
    return f"the payee account: {', '.join(parts)}" if parts else None


def _refund(f: F, up: Up) -> str | None:
    if f["payee_paid_payer_24h"] and "payee_paid_payer_24h" in up:
        return "the payee account had paid this person's account in the last 24 h, then asked for more"
    return None


def _velocity(f: F, up: Up) -> str | None:
    parts = []
    if "outs_10m_count" in up:
        parts.append(f"{_count(f['outs_10m_count'], 'payment')} in the last 10 min")
    for count, total, window in (
        ("outs_1h_count", "outs_1h_sum_log10", "hour"),
        ("outs_24h_count", "outs_24h_sum_log10", "24 h"),
    ):
        said = _payments(f, up, count, total, " paid out")
        if said:
            parts.append(f"{said} in the last {window}")
    if "new_payees_24h" in up:
        parts.append(f"{_count(f['new_payees_24h'], 'new payee')} in 24 h")
    if f["to_recent_payees_7d_sum_log10"] > 0 and "to_recent_payees_7d_sum_log10" in up:
        parts.append(f"{money(10 ** f['to_recent_payees_7d_sum_log10'] - 1)} to new payees in 7 days")
    return ", ".join(parts) or None


def _contacts(f: F, up: Up) -> str | None:
    parts = []
    if f["link_sms_7d"] and "link_sms_7d" in up:
        parts.append(f"{f['link_sms_7d']:.0f} SMS with links from unknown senders this week")  # "2 SMS"
    if f["unknown_calls_24h"] and "unknown_calls_24h" in up:
        parts.append(f"{_count(f['unknown_calls_24h'], 'call')} from unknown numbers in 24 h")
    if f["long_unknown_calls_7d"] and "long_unknown_calls_7d" in up:
        parts.append(f"{_count(f['long_unknown_calls_7d'], 'long call')} from unknown numbers this week")
    if f["reported_calls_7d"] and "reported_calls_7d" in up:
        parts.append(f"{_count(f['reported_calls_7d'], 'call')} from reported numbers this week")
    return "; ".join(parts) or None


def _history(f: F, up: Up) -> str | None:
    if f["prior_money_outs"] >= 5 or "prior_money_outs" not in up:
        return None
    return f"little payment history for this person ({_count(f['prior_money_outs'], 'earlier payment')})"


CALL = (
    "call_present",
    "call_duration_min",
    "caller_unknown",
    "caller_reported",
    "caller_international",
    "caller_virtual_operator",
    "caller_fixed_line",
    "minutes_call_end_to_transfer",
    "seq_unknown_call_new_payee",
)
GROUPS: list[tuple[tuple[str, ...], Callable[[F, Up], str | None]]] = [
    (CALL, _call),
    (DEVICE, _takeover),
    (SIM, _sim),
    (("seq_topup_new_payee", "wallet_payment"), _wallet),
    (
        (
            "payee_new",
            "payee_prior_count",
            "to_payee_24h_sum_log10",
            "payee_first_paid_h",
            "amount_vs_last_to_payee",
        ),
        _payee,
    ),
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
            "payee_outflows_seen",
            "payee_active_hours",
        ),
        _rests,
    ),
    (("payee_paid_payer_24h",), _refund),
    (
        (
            "outs_10m_count",
            "outs_1h_count",
            "outs_1h_sum_log10",
            "outs_24h_count",
            "outs_24h_sum_log10",
            "new_payees_24h",
            "to_recent_payees_7d_sum_log10",
        ),
        _velocity,
    ),
    (("unknown_calls_24h", "long_unknown_calls_7d", "reported_calls_7d", "link_sms_7d"), _contacts),
    (("prior_money_outs", "telecom_seen"), _history),
]
_GROUP_INDEX = [np.array([INDEX[n] for n in names]) for names, _ in GROUPS]
assert sorted(i for index in _GROUP_INDEX for i in index.tolist()) == list(range(len(FEATURE_NAMES)))


def group_contributions(contributions: np.ndarray) -> np.ndarray:
    """Rows × GROUPS: each group's share of the score's departure from the expected score."""
    return np.column_stack([contributions[:, index].sum(axis=1) for index in _GROUP_INDEX])


def reasons(
    rows: np.ndarray, contributions: np.ndarray, stated: Sequence[Up] | None = None
) -> list[list[str]]:
    """For each row, the groups that raised its score, strongest first, in words (at most MAX_REASONS);
    an empty list when no group raised it by MIN_CONTRIBUTION (a hard rule says its own reason). A row's
    `stated` features are facts its hard rules' reasons already state: they are not said again."""
    return [[text for _, text in said] for said in _said(rows, contributions, stated)]


def tells_the_call(
    rows: np.ndarray, contributions: np.ndarray, stated: Sequence[Up] | None = None
) -> list[bool]:
    """For each row, whether its reasons (as `reasons` says them) include the call before the payment."""
    return [any(GROUPS[k][0] is CALL for k, _ in said) for said in _said(rows, contributions, stated)]


def _said(
    rows: np.ndarray, contributions: np.ndarray, stated: Sequence[Up] | None
) -> list[list[tuple[int, str]]]:
    out = []
    stated = stated or [frozenset()] * len(rows)
    for row, by_feature, by_group, known in zip(
        rows, contributions, group_contributions(contributions), stated, strict=True
    ):
        f = named(row)
        up = frozenset(name for name, i in INDEX.items() if by_feature[i] > 0) - known
        said: list[tuple[int, str]] = []
        for k in np.argsort(-by_group):
            if by_group[k] < MIN_CONTRIBUTION or len(said) >= MAX_REASONS:
                break
            text = GROUPS[k][1](f, up)
            if text:
                said.append((int(k), text))
        out.append(said)
    return out
