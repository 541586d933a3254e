"""Alert reasons in Mandarin. The scorer words its reasons in English (`services/scorer/explain.py`,
`rules.py`); the console shows them in the reader's language. A reason no pattern knows is shown as
the scorer wrote it, so a new wording is never lost, only untranslated."""

from __future__ import annotations

import re
from collections.abc import Callable

Match = re.Match[str]

WHO = {
    "a number reported for fraud": "被举报的涉诈号码",
    "a number that had never called before": "从未来电的陌生号码",
    "a known number": "熟悉的号码",
    "a number": "来电号码",
}
KINDS = {
    "international": "境外",
    "virtual-operator": "虚拟运营商",
    "international virtual-operator": "境外、虚拟运营商",
    "mobile": "手机",
    "mobile virtual-operator": "虚拟运营商手机",
}


def _money(text: str) -> str:
    """ "48,000 CNY" → "48,000元"."""
    return text.replace(" CNY", "元")


def _call(m: Match) -> str:
    """The scorer states only the call's parts that raised the score: each one may be missing."""
    who = WHO.get(m["who"], m["who"]) if m["who"] else "来电号码"
    if m["kinds"]:
        who += f"（{KINDS.get(m['kinds'], m['kinds'])}）"
    talked = f"当事人与{who}通话" + (f"{m['minutes']}分钟" if m["minutes"] else "")
    gap = m["gap"] and ("不到1分钟" if m["gap"] == "under a minute" else _span(m["gap"]))
    when = "通话期间" if m["when"] == "during the call" else f"通话结束{gap}后" if gap else "随后"
    return f"{talked}，{when}{'向从未付过款的收款人' if m['to'] else ''}转账"


def _people(text: str) -> str:
    return "1人" if text == "1 person" else text.replace(" different people", "人")


def _span(text: str) -> str:
    """ "7 min" → "7分钟", "5 h" → "5小时"."""
    n, unit = text.split()
    return f"{n}{'分钟' if unit == 'min' else '小时'}"


def _window(text: str) -> str:
    return {"hour": "1小时", "10 min": "10分钟"}.get(text, "24小时")


def _since(m: Match) -> str:
    """ "under a minute" → "不到1分钟", "40 min" → "40分钟": how long ago a payee was first paid or seen."""
    return "不到1分钟" if m["t"] == "under a minute" else _span(m["t"])


def _fan_in(m: Match) -> str:
    parts = [f"在过去{_window(m['w'])}内收到{_people(m['p'])}的汇款"] if m["p"] else []
    if m["n"]:
        parts.append(f"24小时内收款{m['n']}笔" + (f"，共{_money(m['a'])}" if m["a"] else ""))
    elif m["s"]:
        parts.append(f"24小时内收款{_money(m['s'])}")
    return "收款账户" + "，".join(parts)


def _paid_out(m: Match) -> str:
    """The payee's pay-out parts that raised the score (amount, share, accounts), each one may be missing."""
    what = _money(m["a"]) if m["a"] else ""
    if m["p"]:
        what += f"（{m['p']}%）" if what else f"{m['p']}%"
    return "24小时内" + (f"转出{what}" if what else "有转出") + (f"，转至{m['k']}个账户" if m["k"] else "")


# The payee account's parts (a part no pattern knows is shown as written).
ACCOUNT: list[tuple[re.Pattern[str], Callable[[Match], str]]] = [
    (
        re.compile(
            r"(?:(?P<a>[\d,]+ CNY) )?(?:\(?(?P<p>\d+)%\)? )?paid out(?: to (?P<k>\d+) accounts?)? in 24 h"
        ),
        _paid_out,
    ),
    (re.compile(r"first seen (?P<t>under a minute|\d+ (?:min|h)) ago"), lambda m: f"{_since(m)}前首次出现"),
]


def _rests(m: Match) -> str:
    paid = f"（{_one(m['paid'], ACCOUNT) or m['paid']}）" if m["paid"] else ""
    seen = f"；该账户{_one(m['seen'], ACCOUNT) or m['seen']}" if m["seen"] else ""
    return f"资金在收款账户停留约{m['n']}分钟即转出{paid}{seen}"


def _account(m: Match) -> str:
    return "收款账户" + "，".join(_one(p, ACCOUNT) or p for p in m["parts"].split(", "))


def _payee(m: Match) -> str:
    """A known payee's parts that raised the score, each translated (a part no pattern knows as written)."""
    return f"{_money(m['a'])}转给收款人：" + "，".join(_one(p, PAYEE) or p for p in m["parts"].split(", "))


PAYEE: list[tuple[re.Pattern[str], Callable[[Match], str]]] = [
    (re.compile(r"paid (?P<n>\d+) times? before"), lambda m: f"此前付过{m['n']}次"),
    (re.compile(r"first paid (?P<t>under a minute|\d+ (?:min|h)) ago"), lambda m: f"{_since(m)}前首次付款"),
    (re.compile(r"(?P<s>[\d,]+) CNY to it in 24 h"), lambda m: f"24小时内共{m['s']}元"),
    (re.compile(r"(?P<x>[\d.]+) times the payment before"), lambda m: f"是上一笔的{m['x']}倍"),
]


def _device(m: Match) -> str:
    parts = {"a new device logged in": "新设备登录", "the SIM card changed": "更换了SIM卡"}
    return "24小时内" + "、".join(parts.get(p, p) for p in m["parts"].split(" and "))


PATTERNS: list[tuple[re.Pattern[str], Callable[[Match], str]]] = [
    (
        re.compile(
            r"the person had a(?: (?P<minutes>\d+)-minute)? call(?: from (?P<who>.+?))?"
            r"(?: \((?P<kinds>[a-z -]+)\))? and paid(?P<to> to a payee never paid before)?"
            r"(?: (?P<when>during the call|(?P<gap>under a minute|\d+ (?:min|h)) after the call ended))?"
        ),
        _call,
    ),
    (
        re.compile(r"(?P<a>[\d,]+ CNY) went to a payee this person had never paid"),
        lambda m: f"{_money(m['a'])}转给了此人从未付过款的收款人",
    ),
    (re.compile(r"(?P<a>[\d,]+ CNY) to a payee: (?P<parts>.+)"), _payee),
    (
        re.compile(r"(?P<a>[\d,]+ CNY) is (?P<n>\d+) times this person's typical payment"),
        lambda m: f"{_money(m['a'])}，是此人平时付款的{m['n']}倍",
    ),
    (re.compile(r"a large payment: (?P<a>[\d,]+ CNY)"), lambda m: f"大额付款：{_money(m['a'])}"),
    (re.compile(r"the amount: (?P<a>[\d,]+ CNY)"), lambda m: f"付款金额：{_money(m['a'])}"),
    (
        re.compile(
            r"the payee account received"
            r"(?: money from (?P<p>1 person|\d+ different people) in the last (?P<w>hour|10 min|24 h))?"
            r"(?:(?: and)? (?:(?P<n>\d+) payments?(?: totalling (?P<a>[\d,]+ CNY))?|(?P<s>[\d,]+ CNY))"
            r" in 24 h)?"
        ),
        _fan_in,
    ),
    (re.compile(r"the payee account has not paid money on"), lambda m: "收款账户尚未转出资金"),
    (
        re.compile(
            r"money rests about (?P<n>\d+) min in the payee account before it moves on"
            r"(?: \((?P<paid>.+ in 24 h)\))?(?:; the account was (?P<seen>first seen .+ ago))?"
        ),
        _rests,
    ),
    (re.compile(r"the payee account: (?P<parts>(?:first seen|[\d,]+ CNY|\d+%|paid out).*)"), _account),
    (re.compile(r"the payment was made from a wallet"), lambda m: "此笔付款来自钱包"),
    (re.compile(r"(?P<parts>.+) within 24 h"), _device),
    (re.compile(r"no device change"), lambda m: "设备无变化"),
    (
        re.compile(r"little history for this person \((?P<n>\d+) earlier payments?\)"),
        lambda m: f"此人历史记录很少（此前付款{m['n']}笔）",
    ),
    (
        re.compile(
            r"a new device logged in to the account(?: (?P<t>\d+ (?:min|h)|under a minute))?"
            r" before the payment(?P<sms> after an SMS with a link from an unknown sender)?"
        ),
        lambda m: (
            ("收到陌生号码带链接短信后，" if m["sms"] else "")
            + f"付款前{_since(m) if m['t'] else ''}有新设备登录账户"
        ),
    ),
    (
        re.compile(
            r"the person's SIM card was changed(?: (?P<t>\d+ (?:min|h)|under a minute))? before the payment"
        ),
        lambda m: f"付款前{_since(m) if m['t'] else ''}此人的SIM卡被更换",
    ),
    (
        re.compile(r"the wallet was topped up from the bank just before paying a payee it never paid"),
        lambda m: "钱包刚从银行充值，随即向从未付过款的收款人付款",
    ),
    (
        re.compile(r"the payee account had paid this person's account in the last 24 h, then asked for more"),
        lambda m: "收款账户24小时内曾向此人账户付款，随后又收到此人更多汇款",
    ),
    (
        re.compile(r"little payment history for this person \((?P<n>\d+) earlier payments?\)"),
        lambda m: f"此人付款记录很少（此前付款{m['n']}笔）",
    ),
    (re.compile(r"at (?P<h>\d+):00 local time"), lambda m: f"当地时间{m['h']}点"),
    (re.compile(r"the caller's number is on the fraud blocklist"), lambda m: "来电号码在涉诈号码黑名单中"),
    (
        re.compile(r"the caller's number has been reported for fraud by its operator"),
        lambda m: "来电号码已被运营商举报涉诈",
    ),
    (re.compile(r"the payee account is a known mule account"), lambda m: "收款账户是已知的涉诈账户"),
    (
        re.compile(
            r"the account received money from (?P<n>\d+) different people in the last hour "
            r"\((?P<a>[\d,]+ CNY)\)"
        ),
        lambda m: f"该账户过去1小时收到{m['n']}人汇款（{_money(m['a'])}）",
    ),
    (
        re.compile(r"it paid out (?P<p>\d+)% of it within (?P<m>\d+) minutes to (?P<k>\d+) account\(s\)"),
        lambda m: f"其中{m['p']}%在{m['m']}分钟内转至{m['k']}个账户",
    ),
]
# The clauses of a reason told in parts (the recent contacts joined by "; ", the payments by ", ").
CLAUSES: list[tuple[re.Pattern[str], Callable[[Match], str]]] = [
    (
        re.compile(
            r"(?P<n>\d+) payments?(?: totalling (?P<a>[\d,]+ CNY))? in the last (?P<w>10 min|hour|24 h)"
        ),
        lambda m: f"过去{_window(m['w'])}付款{m['n']}笔" + (f"，共{_money(m['a'])}" if m["a"] else ""),
    ),
    (
        re.compile(r"(?P<a>[\d,]+ CNY) paid out in the last (?P<w>hour|24 h)"),
        lambda m: f"过去{_window(m['w'])}共付款{_money(m['a'])}",
    ),
    (re.compile(r"(?P<k>\d+) new payees? in 24 h"), lambda m: f"24小时内新增收款人{m['k']}个"),
    (
        re.compile(r"(?P<r>[\d,]+ CNY) to new payees in 7 days"),
        lambda m: f"7天内付给新收款人共{_money(m['r'])}",
    ),
    (
        re.compile(r"(?P<n>\d+) SMS with links from unknown senders this week"),
        lambda m: f"本周收到陌生号码带链接短信{m['n']}条",
    ),
    (
        re.compile(r"(?P<n>\d+) long calls? from unknown numbers this week"),
        lambda m: f"本周陌生号码长时间来电{m['n']}次",
    ),
    (
        re.compile(r"(?P<n>\d+) calls? from reported numbers this week"),
        lambda m: f"本周被举报号码来电{m['n']}次",
    ),
    (re.compile(r"(?P<n>\d+) calls? from unknown numbers in 24 h"), lambda m: f"24小时内陌生来电{m['n']}次"),
]


def _one(text: str, table: list[tuple[re.Pattern[str], Callable[[Match], str]]]) -> str | None:
    for pattern, words in table:
        found = pattern.fullmatch(text)
        if found:
            return words(found)
    return None


def in_language(reason: str, lang: str) -> str:
    """The reason in `lang` (zh or en); as written when no pattern knows it."""
    if lang != "zh":
        return reason
    found = _one(reason, PATTERNS)
    if found is not None:
        return found
    parts = [_one(p, CLAUSES) for p in re.split(r"; |, ", reason)]  # "1,000 CNY" has no space after its comma
    return "；".join(p for p in parts if p) if all(parts) else reason
