"""The committed model on hand-built scams of each typology, through both stages: it alerts, and among the
alert's three strongest reasons is the signal the typology is known by (services.scorer.explain, in
words; the typologies and their signals are those of docs/simulator.md and the report's reason check)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from models.artifact import ARTIFACTS
from tests import factories as f
from tests.scorer.scenes import NOW, Scene, movements, scene, score, stage, stage_one

Event = tuple[str, dict[str, Any]]


def _at(minutes_ago: float) -> str:
    return f.iso(NOW - timedelta(minutes=minutes_ago))


def sms(s: Scene, minutes_ago: float) -> Event:
    return "tel-a", {
        "type": "telecom.sms",
        "event_id": f.unique("sms"),
        "occurred_at": _at(minutes_ago),
        "sender": f.phone(),
        "recipient": s.victim,
        "contains_link": True,
    }


def login(s: Scene, minutes_ago: float) -> Event:
    return "bank-a", {
        "type": "bank.login",
        "event_id": f.unique("login"),
        "occurred_at": _at(minutes_ago),
        "account": s.payer_account,
        "holder_phone": s.victim,
        "device_id": f.unique("dev"),
        "new_device": True,
    }


def sim_change(s: Scene, minutes_ago: float) -> Event:
    return "tel-a", {
        "type": "telecom.sim_change",
        "event_id": f.unique("sim"),
        "occurred_at": _at(minutes_ago),
        "subscriber": s.victim,
    }


def top_up(s: Scene, wallet: str, amount: str, minutes_ago: float) -> Event:
    return "pay-a", {
        "type": "payment.topup",
        "event_id": f.unique("topup"),
        "occurred_at": _at(minutes_ago),
        "account": wallet,
        "holder_phone": s.victim,
        "amount": amount,
        "source_account": s.payer_account,
    }


def wallet_payment(s: Scene, wallet: str, amount: str, minutes_ago: float) -> Event:
    return "pay-a", {
        "type": "payment.payment",
        "event_id": f.unique("pay"),
        "occurred_at": _at(minutes_ago),
        "payer_account": wallet,
        "payer_phone": s.victim,
        "payee_account": s.payee_account,
        "payee_institution": "pay-a",
        "amount": amount,
    }


def history(s: Scene) -> list[Event]:
    """A week of ordinary payments to one known payee: the victim is no stranger to the scorer."""
    known = Scene(s.victim, s.caller, s.payer_account, "SHOP0000001")
    return [known.transfer("300.00", minutes_ago=60 * 24 * d + 30) for d in range(1, 6)]


def impersonation(s: Scene) -> list[Event]:
    return [*history(s), s.call(minutes_ago=50, minutes=40), s.transfer("50000.00", minutes_ago=5)]


def account_takeover(s: Scene) -> list[Event]:
    return [*history(s), sms(s, 90), login(s, 8), s.transfer("40000.00", minutes_ago=4)]


def sim_swap(s: Scene) -> list[Event]:
    return [*history(s), sim_change(s, 60), login(s, 20), s.transfer("60000.00", minutes_ago=5)]


def wallet_scam(s: Scene) -> list[Event]:
    wallet = f.account("W")
    return [
        *history(s),
        s.call(minutes_ago=45, minutes=30),
        top_up(s, wallet, "20000.00", 8),
        wallet_payment(s, wallet, "20000.00", 4),
    ]


def mule_network(s: Scene) -> list[Event]:
    payers = [scene(s.payee_account).transfer("8000.00", minutes_ago=50 - i) for i in range(10)]
    return [*payers, *history(s), s.transfer("9000.00", minutes_ago=3)]


def collecting(s: Scene, payers: int, *, paid_out: bool = True) -> list[Event]:
    """The payee account collecting from other people over the last hours and passing the money on."""
    events = [scene(s.payee_account).transfer("6000.00", minutes_ago=180 - 15 * i) for i in range(payers)]
    if paid_out:
        onward = Scene(f.phone(), f.phone(), s.payee_account, f.account("L2"))
        events += [_from_bank_x(onward.transfer("5000.00", minutes_ago=170 - 15 * i)) for i in range(payers)]
    return sorted(events, key=lambda e: e[1]["occurred_at"])


def _from_bank_x(event: Event) -> Event:
    """A transfer out of an account at bank-x, as bank-x reports it."""
    return "bank-x", {**event[1], "payee_institution": "bank-y"}


def impersonation_service(s: Scene, minutes: float = 18, amount: str = "12000.00") -> list[Event]:
    # "Customer service" about a refund: a shorter call than the hard rule's 20 minutes (the model's own
    # alert), a smaller sum than a police impersonation.
    return [*history(s), s.call(minutes_ago=minutes + 6, minutes=minutes), s.transfer(amount, minutes_ago=4)]


def investment(s: Scene) -> list[Event]:
    # A platform's collection account taking in from several investors and passing it on within minutes;
    # the victim's third deposit, larger than the first two.
    return [
        *history(s),
        *collecting(s, 6),
        s.transfer("1000.00", minutes_ago=60 * 30),
        s.transfer("2500.00", minutes_ago=60 * 6),
        s.transfer("6000.00", minutes_ago=4),
    ]


def job_scam(s: Scene) -> list[Event]:
    # A small "task", paid back with a commission by the scam's account; then the large "tasks".
    refund = Scene(f.phone(), f.phone(), s.payee_account, s.payer_account, payee_bank="bank-a")
    return [
        *history(s),
        s.transfer("100.00", minutes_ago=90),
        ("bank-x", refund.transfer("130.00", minutes_ago=80)[1]),
        s.transfer("3000.00", minutes_ago=30),
        s.transfer("9000.00", minutes_ago=4),
    ]


def loan(s: Scene) -> list[Event]:
    # The "loan officer" calls, then a fee to an account that collects fees from many people.
    return [
        *history(s),
        *collecting(s, 6),
        s.call(minutes_ago=20, minutes=8),
        s.transfer("3000.00", minutes_ago=5),
    ]


def and_then(build: Callable[[Scene], list[Event]], amount: str) -> Callable[[Scene], list[Event]]:
    """The scene, and the victim's next, larger payment to the same account a few minutes later."""
    return lambda s: [*build(s), s.transfer(amount, minutes_ago=1)]


CASES: dict[str, tuple[Callable[[Scene], list[Event]], str | tuple[str, ...]]] = {
    "impersonation (police)": (impersonation, "-minute call from a number that had never called before"),
    "impersonation (customer service)": (
        impersonation_service,
        "-minute call from a number that had never called before",
    ),
    "account takeover": (account_takeover, "a new device logged in to the account"),
    "SIM swap": (sim_swap, "SIM card was changed"),
    "mule network": (mule_network, "the payee account received money from"),
    # Either of its signals (the caller who talked them into it, or the top-up just before paying).
    "wallet scam": (
        wallet_scam,
        ("the wallet was topped up from the bank", "from a number that had never called"),
    ),
    # The released model alerts these two from the next payment (test_known_misses below).
    "investment": (
        and_then(investment, "12000.00"),
        ("the payee account received money from", "money rests about"),
    ),
    "job scam": (
        job_scam,
        ("the payee account had paid this person's account", "the payee account received money from"),
    ),
    "loan": (
        and_then(loan, "5000.00"),
        ("from a number that had never called", "the payee account received money from", "money rests"),
    ),
}


@pytest.mark.parametrize(("build", "words"), CASES.values(), ids=CASES.keys())
def test_the_typologys_signal_is_among_the_reasons(
    build: Callable[[Scene], list[Event]], words: str | tuple[str, ...]
) -> None:
    account_stage = stage(ARTIFACTS)
    persons = stage_one()
    s = scene()
    events = sorted(build(s), key=lambda e: e[1]["occurred_at"])
    alerts, _ = score(account_stage, movements(*events, persons=persons))
    mine = [a for a in alerts if a.subject.phone == s.victim]
    assert mine, "the model did not alert on it"
    signals = (words,) if isinstance(words, str) else words
    top = mine[-1].reasons[:3]
    assert any(w in reason for w in signals for reason in top), mine[-1].reasons


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            investment,
            marks=pytest.mark.xfail(
                strict=True,
                reason="m-20261208-r13 scores the third deposit under its 0.83 and alerts the next payment "
                "into the account (m-20261202-r7 alerted it at 0.95, m-20261207-r10 scored it 0.77)",
            ),
        ),
        loan,  # m-20261207-r10 scored its first fee 0.75 under its 0.82; m-20261208-r13 alerts it
    ],
    ids=["investment", "loan"],
)
def test_known_misses_a_first_ordinary_sum_into_an_account_collecting_from_many(
    build: Callable[[Scene], list[Event]],
) -> None:
    # Strict: once a released model alerts them, this fails and the mark goes.
    s = scene()
    assert _alerted(build(s), s)


def _alerted(events: list[Event], s: Scene) -> bool:
    alerts, _ = score(stage(ARTIFACTS), movements(*events, persons=stage_one()))
    return any(a.subject.phone == s.victim for a in alerts)


@pytest.mark.xfail(
    strict=True,
    reason="m-20261208-r13 scores it 0.71 under its 0.83: its simulator's honest deposits after strangers' "
    "calls go to accounts first seen, as this scam's does (docs/model.md, 2026-12-08)",
)
def test_a_typical_customer_service_scam_is_alerted() -> None:
    # 8,000 CNY to a new payee 4 min after a 15-minute call from a stranger's mobile: m-20261201-r4 missed it
    # (0.74 under its 0.79), m-20261201-r5, trained on five times the traffic, alerts; so do m-20261202-r7
    # (0.867 over its 0.808) and m-20261207-r10 (0.94 over its 0.82). Strict: once a released model alerts
    # it again, this fails and the mark goes.
    s = scene()
    assert _alerted(impersonation_service(s, minutes=15, amount="8000.00"), s)


def test_a_large_payment_into_an_account_collecting_from_many_is_alerted() -> None:
    # 60,000 CNY into an account that collected from 8 people in half an hour: m-20261201-r4 scored it 0.74
    # (large first sums to a busy payee were cars and deposits to it), m-20261201-r5 0.86, over its 0.83;
    # m-20261207-r10 0.87 over its 0.82.
    s = scene()
    payers = [scene(s.payee_account).transfer("9000.00", minutes_ago=30 - i) for i in range(8)]
    assert _alerted([*payers, s.transfer("60000.00", minutes_ago=1)], s)


def test_an_account_takeover_read_in_the_worst_order_is_alerted() -> None:
    # The bank's transfer first, then its new device's login, then the operator's SMS with the link (the
    # topics are read independently): each late step scores the transfer again. m-20261202-r7: nothing
    # before the late rescore (the transfer alone is under its 0.81); now 0.98 on the login, then 0.99 with
    # the SMS, as in order.
    s = scene()
    *past, text, device, transfer = account_takeover(s)
    alerts, _ = score(stage(ARTIFACTS), movements(*past, transfer, device, text, persons=stage_one()))
    mine = [a for a in alerts if a.subject.phone == s.victim]
    assert mine, "the model did not alert on it"
    assert "after an SMS with a link" in mine[-1].reasons[0], mine[-1].reasons


TAKEN_OVER = {
    "SIM change": lambda s: [sim_change(s, 60)],
    "SIM change, new device": lambda s: [sim_change(s, 60), login(s, 20)],
    "link SMS, new device": lambda s: [sms(s, 90), login(s, 8)],
}


@pytest.mark.parametrize("amount", ["30000.00", "80000.00"])
@pytest.mark.parametrize("before", TAKEN_OVER.values(), ids=TAKEN_OVER.keys())
def test_a_takeover_of_a_person_never_seen_paying_is_alerted(
    before: Callable[[Scene], list[Event]], amount: str
) -> None:
    # No payment history: the models read a large first sum as a car or a deposit, whatever came before it
    # (a SIM change then 80,000 CNY: m-20261202-r7 0.42 under its 0.81). The hard rule alerts, facts first.
    s = scene()
    alerts, _ = score(
        stage(ARTIFACTS), movements(*before(s), s.transfer(amount, minutes_ago=4), persons=stage_one())
    )
    mine = [a for a in alerts if a.subject.phone == s.victim]
    assert mine, "no alert"
    assert mine[0].score >= 0.95
    assert "SIM card was changed" in mine[0].reasons[0] or "a new device logged in" in mine[0].reasons[0]
    assert any(r.endswith("went to a payee this person had never paid") for r in mine[0].reasons)


def test_a_takeover_read_after_its_transfer_is_alerted_by_the_rule() -> None:
    # The operator's SIM change read after the bank's transfer (topics of their own): the late change scores
    # the transfer again, and the rule alerts on it then.
    s = scene()
    events = [s.transfer("80000.00", minutes_ago=4), sim_change(s, 60)]
    alerts, _ = score(stage(ARTIFACTS), movements(*events, persons=stage_one()))
    mine = [a for a in alerts if a.subject.phone == s.victim]
    assert mine and mine[0].score >= 0.95
    assert mine[0].reasons[0].startswith("the person's SIM card was changed 56 min before the payment")


NOT_TAKEN_OVER = {
    "a SIM change 30 h before": ("30000.00", 60 * 30),
    "an ordinary sum": ("2000.00", 60),
}


@pytest.mark.parametrize(("amount", "minutes_ago"), NOT_TAKEN_OVER.values(), ids=NOT_TAKEN_OVER.keys())
def test_a_new_sim_is_no_takeover_past_a_day_or_under_a_large_sum(amount: str, minutes_ago: float) -> None:
    # The same person, no history, a SIM change: a day later, or a sum under the rule's large amount, is
    # the model's alone (m-20261202-r7 and m-20261207-r10 alert neither; the rule's score would be 0.95).
    s = scene()
    events = [sim_change(s, minutes_ago), s.transfer(amount, minutes_ago=4)]
    alerts, _ = score(stage(ARTIFACTS), movements(*events, persons=stage_one()))
    assert not [a for a in alerts if a.subject.phone == s.victim]
