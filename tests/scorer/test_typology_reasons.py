"""The committed model on hand-built scams of each typology, through both stages: it alerts, and among the
alert's reasons is the signal the typology is known by (services.scorer.explain, in words)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from models.artifact import ARTIFACTS
from tests import factories as f
from tests.scorer.scenes import NOW, Scene, inflows, scene, score, stage, stage_one

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


CASES: dict[str, tuple[Callable[[Scene], list[Event]], str | tuple[str, ...]]] = {
    "impersonation": (impersonation, "-minute call from a number that had never called before"),
    "account takeover": (account_takeover, "a new device logged in to the account"),
    "SIM swap": (sim_swap, "SIM card was changed"),
    "mule network": (mule_network, "the payee account received money from"),
    # Either of its signals (the caller who talked them into it, or the top-up just before paying).
    "wallet scam": (
        wallet_scam,
        ("the wallet was topped up from the bank", "from a number that had never called"),
    ),
}


@pytest.mark.parametrize(("build", "words"), CASES.values(), ids=CASES.keys())
def test_the_typologys_signal_is_among_the_reasons(
    build: Callable[[Scene], list[Event]], words: str | tuple[str, ...]
) -> None:
    account_stage = stage(ARTIFACTS)
    persons = stage_one()
    s = scene()
    moves = inflows(*build(s), persons=persons)
    alerts, _ = score(account_stage, moves)
    mine = [a for a in alerts if a.subject.phone == s.victim]
    assert mine, "the model did not alert on it"
    signals = (words,) if isinstance(words, str) else words
    assert any(w in reason for w in signals for reason in mine[-1].reasons), mine[-1].reasons
