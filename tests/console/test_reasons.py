"""Every reason the scorer can word is shown in Mandarin: the scorer's own wording functions are run
over varied features, and none of their sentences may fall through the console's table untranslated.
(A new wording fails here, telling where to add it.)"""

from __future__ import annotations

import itertools
import re

from models.features.vector import FEATURE_NAMES
from services.console.reasons import in_language
from services.scorer import explain

LATIN = re.compile(r"[A-Za-z]{2,}")


def _variants() -> list[dict[str, float]]:
    base = {name: 0.0 for name in FEATURE_NAMES}
    out = []
    for flags in itertools.product((0.0, 1.0), repeat=5):
        f = dict(base)
        f["call_present"] = 1.0
        (
            f["caller_reported"],
            f["caller_unknown"],
            f["caller_international"],
            f["payee_new"],
            f["sim_change_24h"],
        ) = flags
        f["caller_virtual_operator"] = flags[2]
        f["call_duration_min"] = 41.0
        # during the call; under a minute after it; minutes after it
        f["minutes_call_end_to_transfer"] = -1.0 if flags[0] else 0.4 if flags[4] else 3.0
        f["amount_log10"], f["amount_vs_typical"] = 4.68, 1.2 if flags[1] else 0.1
        f["prior_money_outs"] = 3.0 * flags[1]
        f["payee_prior_count"], f["to_payee_24h_sum_log10"] = 2.0, 3.5
        f["payee_first_paid_h"] = (20.0, 0.005)[int(flags[0])] if flags[1] else 168.0
        f["amount_vs_last_to_payee"] = 0.6 * flags[2]
        f["to_recent_payees_7d_sum_log10"] = 4.2 * flags[3]
        f["payee_payers_1h"], f["payee_payers_24h"] = (3.0, 5.0) if flags[3] else (1.0, 1.0)
        f["payee_minutes_money_rests"] = 1440.0 if flags[4] else 7.0
        f["payee_payout_ratio_24h"] = 0.92
        f["outs_1h_count"], f["outs_1h_sum_log10"], f["new_payees_24h"] = 1.0 + flags[2], 4.7, 1.0 + flags[3]
        f["link_sms_7d"], f["long_unknown_calls_7d"], f["reported_calls_7d"] = (
            flags[0],
            2.0 * flags[1],
            flags[2],
        )
        f["unknown_calls_24h"] = 1.0 + flags[4]
        f["wallet_payment"], f["outs_10m_count"] = flags[0], 1.0 + flags[1]
        f["outs_24h_count"], f["outs_24h_sum_log10"] = 3.0 + flags[2], 4.9
        f["payee_inflows_24h"], f["payee_received_24h_log10"] = 4.0 + flags[3], 4.3
        f["payee_outflows_seen"], f["payee_paid_out_24h_log10"] = 1.0 - flags[0], 4.1
        f["payee_payees_24h"], f["payee_active_hours"] = (
            1.0 + flags[1],
            (0.005, 3.0, 24.0)[int(flags[2] + flags[3])],
        )
        f["new_device_24h"] = flags[3]
        f["hour_of_day"] = 23.0
        out.append(f)
    return out


def _raised() -> list[frozenset[str]]:
    """Which features raised the score: all of them, and subsets leaving out every part of a sentence in
    turn (a sentence states only the parts that raised the score)."""
    return [explain.EVERY] + [
        frozenset(name for i, name in enumerate(FEATURE_NAMES) if (i * 7 + k) % n)
        for k in range(6)
        for n in (2, 3)
    ]


def test_every_reason_the_scorer_words_reads_in_mandarin():
    said = {
        text for f in _variants() for up in _raised() for _, words in explain.GROUPS if (text := words(f, up))
    }
    said |= {
        "the caller's number is on the fraud blocklist",
        "the caller's number has been reported for fraud by its operator",
        "the payee account is a known mule account",
        "the account received money from 14 different people in the last hour (96,000 CNY)",
        "it paid out 93% of it within 6 minutes to 3 account(s)",
        "the amount: 856 CNY",
    }
    assert len(said) > 60
    untranslated = [s for s in said if LATIN.search(in_language(s, "zh").replace("SIM", ""))]
    assert untranslated == []
    assert in_language("the payee account received money from 3 different people in the last hour", "zh") == (
        "收款账户在过去1小时内收到3人的汇款"
    )
    assert (
        in_language(
            "3,000 CNY to a payee: paid 1 time before, first paid 20 h ago, 1,000 CNY to it in 24 h, "
            "3.0 times the payment before",
            "zh",
        )
        == "3,000元转给收款人：此前付过1次，20小时前首次付款，24小时内共1,000元，是上一笔的3.0倍"
    )
    assert in_language("1 payment in the last hour, 2 new payees in 24 h", "zh") == (
        "过去1小时付款1笔；24小时内新增收款人2个"
    )
    assert in_language(
        "4 payments in the last 10 min, 6 payments totalling 40,000 CNY in the last 24 h", "zh"
    ) == ("过去10分钟付款4笔；过去24小时付款6笔，共40,000元")
    assert in_language("the payee account received 15 payments totalling 30,000 CNY in 24 h", "zh") == (
        "收款账户24小时内收款15笔，共30,000元"
    )
    assert (
        in_language(
            "money rests about 5 min in the payee account before it moves on "
            "(12,000 CNY (90%) paid out to 3 accounts in 24 h); the account was first seen 40 min ago",
            "zh",
        )
        == "资金在收款账户停留约5分钟即转出（24小时内转出12,000元（90%），转至3个账户）"
        "；该账户40分钟前首次出现"
    )
    assert in_language("the payee account: first seen under a minute ago, 90% paid out in 24 h", "zh") == (
        "收款账户不到1分钟前首次出现，24小时内转出90%"
    )


def test_a_login_or_sim_change_of_the_same_minute_is_said_so():
    # make run showed "a new device logged in to the account 0 min before the payment".
    f = {name: 0.0 for name in FEATURE_NAMES}
    f |= {"seq_sim_change_payment": 1.0, "hours_since_sim_change": 0.005, "hours_since_new_device": 0.002}
    f |= {"seq_link_new_device_payment": 1.0, "payee_new": 1.0, "amount_log10": 4.0}
    said, _ = explain.takeover_reasons(f)
    assert said[:2] == [
        "the person's SIM card was changed under a minute before the payment",
        "a new device logged in to the account under a minute before the payment after an SMS with a link "
        "from an unknown sender",
    ]
    assert [in_language(s, "zh") for s in said[:2]] == [
        "付款前不到1分钟此人的SIM卡被更换",
        "收到陌生号码带链接短信后，付款前不到1分钟有新设备登录账户",
    ]


def test_english_and_unknown_wordings_are_shown_as_written():
    assert (
        in_language("the payee account is a known mule account", "en")
        == "the payee account is a known mule account"
    )
    assert in_language("a wording nobody taught the console", "zh") == "a wording nobody taught the console"
