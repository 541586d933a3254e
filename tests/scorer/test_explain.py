"""Reasons in words: the feature groups that raised a score are named, strongest first, in sentences an
operator reads (numbers and money as they would say them, never a raw feature name), at most
MAX_REASONS of them; a group that lowered the score or left it unchanged is never said."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.artifact import ARTIFACTS
from models.features.vector import FEATURE_NAMES
from models.model import ScamModel
from services.scorer import explain
from services.scorer.books import Book
from tests.scorer.model_factory import INDEX, row
from tests.scorer.scenes import inflows, scene, stage

# A transparent model: a logistic score of weighted features. Its exact attribution against an all-zero
# reference is each feature's weight times its value, so the order of the reasons is known.
WEIGHTS = {
    "payee_payers_1h": 0.5,
    "call_duration_min": 0.1,
    "payee_new": 1.0,
    "amount_log10": 0.3,
    "payee_minutes_money_rests": -0.001,
    "outs_1h_count": 0.4,
    "hours_since_sim_change": -0.02,
    "link_sms_7d": 0.2,
}


def contributions(rows: np.ndarray) -> np.ndarray:
    w = np.zeros(len(FEATURE_NAMES))
    for name, weight in WEIGHTS.items():
        w[INDEX[name]] = weight
    return rows * w


def explained(*rows: list[float]) -> list[list[str]]:
    batch = np.array(rows)
    return explain.reasons(batch, contributions(batch))


def assert_plain_words(reasons: list[str]) -> None:
    for text in reasons:
        assert text and "_" not in text, text
        assert not [name for name in FEATURE_NAMES if name in text], text


FAN_IN = row(payee_payers_1h=12, payee_payers_24h=12, payee_inflows_24h=12, hours_since_sim_change=72)
SCAM_CALL = row(
    call_present=1,
    call_duration_min=35,
    caller_unknown=1,
    minutes_call_end_to_transfer=4,
    long_unknown_calls_7d=1,
    hours_since_sim_change=72,
)


def test_many_payers_into_the_payee_are_told_in_words() -> None:
    (reasons,) = explained(FAN_IN)
    assert reasons[0] == "the payee account received money from 12 different people in the last hour"
    assert_plain_words(reasons)


def test_a_long_call_from_an_unknown_number_is_told_in_words() -> None:
    (reasons,) = explained(SCAM_CALL)
    assert reasons[0] == (
        "the person had a 35-minute call from a number that had never called before and paid 4 min after "
        "the call ended"
    )
    assert_plain_words(reasons)


def test_reasons_come_strongest_first_and_stop_at_the_maximum() -> None:
    # Contributions: fan-in 6.0, call 3.5, amount 1.35, payments in the hour 1.2, payee 1.0, link SMS
    # 0.2; the SIM card changed an hour before (-0.02 × 1): that one lowered the score.
    busy = np.add.reduce(
        [
            np.array(FAN_IN),
            np.array(SCAM_CALL),
            np.array(row(payee_new=1, amount_log10=math.log10(30_000), outs_1h_count=3)),
            np.array(row(outs_1h_sum_log10=math.log10(45_001), link_sms_7d=1, hours_since_sim_change=-143)),
        ]
    ).tolist()
    (reasons,) = explained(busy)
    assert len(reasons) == explain.MAX_REASONS == 4
    assert reasons == [
        "the payee account received money from 12 different people in the last hour",
        "the person had a 35-minute call from a number that had never called before and paid 4 min after "
        "the call ended",
        "a large payment: 30,000 CNY",
        "3 payments totalling 45,000 CNY in the last hour, 0 new payees in 24 h",
    ]
    assert_plain_words(reasons)


def test_each_row_of_a_batch_gets_its_own_reasons() -> None:
    fan_in, call = explained(FAN_IN, SCAM_CALL)
    assert "12 different people" in fan_in[0] and not any("call" in r for r in fan_in)
    assert "35-minute call" in call[0] and not any("different people" in r for r in call)


def test_a_fact_that_lowered_or_did_not_change_the_score_is_never_said() -> None:
    # A known payee paid four times (its group contributes nothing here) and a SIM card changed three days
    # ago (it lowers this model's score): neither is a reason; nothing raised the score, nothing is said.
    typical = row(payee_prior_count=4, to_payee_24h_sum_log10=0, hours_since_sim_change=72)
    assert explained(typical) == [[]]
    recent = row(hours_since_sim_change=0.5, payee_new=1, amount_log10=math.log10(200))
    (reasons,) = explained(recent)
    assert not any("SIM" in r for r in reasons)  # -0.01: lowered, not raised
    assert reasons == ["200 CNY went to a payee this person had never paid", "the amount: 200 CNY"]


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"caller_reported": 1, "minutes_call_end_to_transfer": -5}, "from a number reported for fraud"),
        ({"minutes_call_end_to_transfer": -5}, "and paid during the call"),
        ({"caller_international": 1, "caller_virtual_operator": 1}, "(international virtual-operator)"),
        ({"seq_unknown_call_new_payee": 1}, "and paid to a payee never paid before 4 min after"),
    ],
)
def test_the_call_is_described_as_it_happened(values: dict[str, float], words: str) -> None:
    call = np.array(SCAM_CALL)
    for name, value in values.items():
        call[INDEX[name]] = value
    (reasons,) = explained(call.tolist())
    assert words in reasons[0]


def test_contributions_of_the_live_model_add_up_and_its_reasons_are_plain_words() -> None:
    """The active artifact on a row from the feature engine (a payee that twelve other people paid within
    the hour, after a long call from an unknown number): the contributions add up exactly to the raw score's
    departure from the model's expected score, and the reasons it gives are said in words."""
    account_stage = stage(ARTIFACTS)
    slot, accounts = account_stage.model, account_stage.accounts.setdefault(0, Book())
    victim = scene()
    for i in range(12):
        (paid,) = inflows(scene(victim.payee_account).transfer("2000.00", minutes_ago=50 - i))
        account_stage._inflow(0, accounts, paid, 0)
    (move,) = inflows(victim.call(), victim.transfer("30000.00"))
    p = account_stage._inflow(0, accounts, move, 0)
    assert p is not None and p.row[INDEX["payee_payers_1h"]] == 13  # premise: the engine saw them all
    rows = np.array([p.row])
    model = slot.live.model
    assert isinstance(model, ScamModel)
    phi = slot.live.contributions(rows)
    assert phi.sum() + model.expected_raw == pytest.approx(model.raw(rows)[0])
    (reasons,) = explain.reasons(rows, phi)
    assert 1 <= len(reasons) <= explain.MAX_REASONS
    assert_plain_words(reasons)
    by_group = explain.group_contributions(phi)[0]
    said = {
        explain.GROUPS[k][1](dict(zip(FEATURE_NAMES, p.row, strict=True)))
        for k in np.flatnonzero(by_group < 0)
    }
    assert not said & set(reasons)  # nothing that lowered the score


def test_counts_of_one_read_in_the_singular() -> None:
    # One payer into the payee and one payment, to one new payee: the payments group raises the score and
    # is said in the singular; the payee's group says nothing for a single payer.
    (reasons,) = explained(
        row(
            payee_payers_24h=1,
            payee_payers_1h=1,
            outs_1h_count=1,
            outs_1h_sum_log10=math.log10(501),
            new_payees_24h=1,
            hours_since_sim_change=72,
        )
    )
    assert reasons == ["1 payment totalling 500 CNY in the last hour, 1 new payee in 24 h"]
