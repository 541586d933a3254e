"""Hard rules in the account stage: a blocklisted caller, a reported caller before a large payment to a new
payee, or a known mule payee alert whatever the model says and however young the state, with the fact as
the first reason; without them a quiet payment raises nothing. Rows come from the feature engine: events
go through stage one as the scorer's consumer would hand them over."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models import artifact
from models.artifact import ARTIFACTS
from streams.schemas.movements import Movement
from tests import factories as f
from tests.scorer.model_factory import save_artifact
from tests.scorer.scenes import NOW, Known, Scene, inflows, movements, scene, score, stage, stage_one

BLOCKED = "the caller's number is on the fraud blocklist"
REPORTED = "the caller's number has been reported for fraud by its operator"
MULE = "the payee account is a known mule account"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that alerts only on link SMS, which these payments never have: it scores them all 0."""
    root = tmp_path_factory.mktemp("artifacts")
    save_artifact(root, "quiet", "link_sms_7d")
    artifact.promote("quiet", root)
    return root


def blocklisted_caller(s: Scene) -> tuple[list[Movement], Known]:
    """An unreported caller the blocklist lists, then a small payment."""
    return inflows(s.call(), s.transfer("800.00")), Known(numbers={s.caller})


def reported_caller(s: Scene) -> tuple[list[Movement], Known]:
    """A caller the operator reported, then a large payment to a payee never paid before."""
    return inflows(s.call(reported=True), s.transfer("30000.00")), Known()


def known_mule(s: Scene) -> tuple[list[Movement], Known]:
    """No call at all: a small payment into an account reported as a mule."""
    return inflows(s.transfer("500.00")), Known(mules={(s.payee_bank, s.payee_account)})


RULES = {
    "blocklisted caller": (blocklisted_caller, BLOCKED, "call_then_transfer"),
    "reported caller, new payee, large amount": (reported_caller, REPORTED, "call_then_transfer"),
    "known mule payee": (known_mule, MULE, "suspicious_payment"),
}


COLD_OR_WARM = pytest.mark.parametrize("cold", [True, False], ids=["cold state", "warm state"])


@COLD_OR_WARM
@pytest.mark.parametrize(("build", "reason", "typology"), RULES.values(), ids=RULES.keys())
def test_a_hard_rule_alerts_whatever_the_model_says(
    model_dir: Path, build: Any, reason: str, typology: str, cold: bool
) -> None:
    s = scene()
    moves, knowledge = build(s)
    account_stage = stage(model_dir, knowledge, cold=cold)
    alerts, pending = score(account_stage, moves)

    # The premise: the model alone would not alert, and the state is as young as the case says.
    assert [p.cold for p in pending] == [cold]
    model_score = account_stage.model.score(np.array([pending[0].row]))[0]
    assert model_score < account_stage.model.threshold

    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.reasons[0] == reason
    assert alert.score == account_stage.s.hard_rule_score
    assert alert.typology == typology
    assert alert.recommended_actions == ["warn_citizen", "notify_police", "recommend_stop_payment"]
    assert (alert.subject.phone, alert.subject.payee_account) == (s.victim, s.payee_account)


@COLD_OR_WARM
def test_a_blocklisted_caller_that_called_before_still_alerts(model_dir: Path, cold: bool) -> None:
    # Scam numbers often ring first: the later call then comes from a "known" contact, which the
    # features do not count as suspicious. The blocklist must still see the caller.
    s = scene()
    moves = inflows(s.call(minutes_ago=180, minutes=1), s.call(), s.transfer("800.00"))
    alerts, _ = score(stage(model_dir, Known(numbers={s.caller}), cold=cold), moves)
    assert [a.reasons[0] for a in alerts] == [BLOCKED]
    # The blocklisted call is the evidence: the alert is about it and names it.
    assert alerts[0].typology == "call_then_transfer"
    assert moves[-1].call_ref in alerts[0].triggering_event_ids
    assert alerts[0].triggering_event_ids[-1] == moves[-1].event_ref


@COLD_OR_WARM
def test_only_a_warm_state_alert_carries_its_features_for_feedback(model_dir: Path, cold: bool) -> None:
    s = scene()
    moves, knowledge = known_mule(s)
    (alert,), _ = score(stage(model_dir, knowledge, cold=cold), moves)
    assert (alert.features is None) == cold
    assert (alert.feature_set is None) == cold


@COLD_OR_WARM
@pytest.mark.parametrize(
    "build",
    [
        # The same events with nothing known about the caller or the payee.
        lambda s: inflows(s.call(), s.transfer("800.00")),
        lambda s: inflows(s.call(minutes_ago=200), s.call(), s.transfer("800.00")),
        lambda s: inflows(s.transfer("500.00")),
        # A reported caller alone is not enough: the payment must be large and to a new payee.
        lambda s: inflows(s.call(reported=True), s.transfer("4999.00")),
        lambda s: inflows(
            s.transfer("200.00", minutes_ago=24 * 60), s.call(reported=True), s.transfer("30000.00")
        )[-1:],
    ],
    ids=[
        "unknown caller",
        "caller called before",
        "no call",
        "reported caller, small amount",
        "reported caller, known payee",
    ],
)
def test_without_a_hard_rule_a_low_score_raises_nothing(model_dir: Path, build: Any, cold: bool) -> None:
    account_stage = stage(model_dir, Known(), cold=cold)
    alerts, pending = score(account_stage, build(scene()))
    assert len(pending) == 1
    assert alerts == []


def test_every_fact_is_told_before_the_models_reasons(model_dir: Path) -> None:
    s = scene()
    moves = inflows(s.call(reported=True), s.transfer("30000.00"))
    knowledge = Known(numbers={s.caller}, mules={(s.payee_bank, s.payee_account)})
    (alert,), _ = score(stage(model_dir, knowledge, cold=True), moves)
    # Blocklisted and reported: the stronger fact once, not both; the mule fact after it. This model knows
    # only link SMS, so no fact of the payment raised its score: none is said.
    assert alert.reasons == [BLOCKED, MULE]


def test_one_alert_per_victim_and_payee(model_dir: Path) -> None:
    s = scene()
    account_stage = stage(model_dir, Known(mules={(s.payee_bank, s.payee_account)}), cold=True)
    persons = stage_one()
    (paid,) = inflows(s.transfer("500.00"), persons=persons)
    first, _ = score(account_stage, [paid])
    assert len(first) == 1
    # The call before the payment arrives late (calls are reported when they end): the same payment
    # is scored again, and must not alert a second time. The call (from a stranger) raised nothing this
    # model scores and no rule speaks of it: it tells the alert nothing, so no revision either (nor does
    # the alert become a call then a transfer).
    (again,) = inflows(s.call(), persons=persons)
    assert (again.event_ref, again.rescore) == (paid.event_ref, True)
    second, pending = score(account_stage, [again])
    assert len(pending) == 1 and second == []
    # Another victim paying the same mule is another alert.
    other = scene(s.payee_account)
    (alert,), _ = score(account_stage, inflows(other.transfer("700.00")))
    assert alert.subject.phone == other.victim


def test_a_hard_rule_alerts_even_with_a_model_threshold_above_the_hard_rule_score(model_dir: Path) -> None:
    s = scene()
    moves, knowledge = known_mule(s)
    account_stage = stage(model_dir, knowledge, cold=False, model_alert_threshold=0.97)
    alerts, _ = score(account_stage, moves)
    assert [a.reasons[0] for a in alerts] == [MULE]


@pytest.mark.parametrize(
    ("minutes", "amount", "cold", "alerted"),
    [
        (35, "30000.00", False, True),
        (35, "30000.00", True, False),  # a young state sees every caller and payee as new
        (10, "30000.00", False, False),  # a short call
        (35, "4999.00", False, False),  # a small payment
    ],
    ids=["long call, large payment", "cold state", "short call", "small payment"],
)
def test_a_long_call_from_a_stranger_then_a_large_payment_to_a_new_payee_alerts(
    model_dir: Path, minutes: float, amount: str, cold: bool, alerted: bool
) -> None:
    s = scene()
    account_stage = stage(model_dir, Known(), cold=cold)
    alerts, _ = score(
        account_stage, inflows(s.call(minutes_ago=minutes + 5, minutes=minutes), s.transfer(amount))
    )
    assert [a.reasons[0] for a in alerts] == (
        [
            f"the person had a {minutes}-minute call from a number that had never called before and paid "
            "to a payee never paid before 2 min after the call ended"
        ]
        if alerted
        else []
    )
    assert [a.typology for a in alerts] == (["call_then_transfer"] if alerted else [])


@pytest.mark.parametrize("reported", [True, False], ids=["reported caller", "long call from a stranger"])
def test_the_models_reasons_do_not_say_again_what_a_callers_hard_rule_said(reported: bool) -> None:
    # The committed model, whose own reasons include the call: the hard rule's fact is said once, first;
    # the model's call sentence keeps only what the rule did not say (all of the call but the report after a
    # reported caller; nothing after the long call, whose rule tells the whole call).
    s = scene()
    known = Scene(s.victim, s.caller, s.payer_account, "SHOP0000001")
    history = [known.transfer("300.00", minutes_ago=60 * 24 * d + 30) for d in range(1, 6)]
    account_stage = stage(ARTIFACTS, Known())
    moves = inflows(*history, s.call(minutes_ago=40, minutes=35, reported=reported), s.transfer("30000.00"))
    alerts, _ = score(account_stage, moves)
    reasons = alerts[-1].reasons
    calls = [r for r in reasons if r.startswith("the person had a")]
    if reported:
        assert reasons[0] == REPORTED
        assert [r for r in reasons if "reported for fraud" in r] == [REPORTED]
        assert calls == [
            "the person had a 35-minute call from a number (mobile) and paid to a payee never paid before "
            "2 min after the call ended"
        ]
    else:
        told = "from a number that had never called before and paid to a payee never paid before 2 min after"
        assert calls == [reasons[0]] == [f"the person had a 35-minute call {told} the call ended"]


@pytest.mark.parametrize(
    ("feature", "typology"),
    [("amount_log10", "suspicious_payment"), ("call_duration_min", "call_then_transfer")],
    ids=["the amount raised the score", "the call raised the score"],
)
def test_an_alert_is_a_call_then_a_transfer_only_where_it_tells_the_call(
    tmp_path: Path, feature: str, typology: str
) -> None:
    # A stranger rang three minutes before an 800 CNY payment (no rule speaks of that). A model that alerts
    # for the amount tells no call, so its alert is no "call then transfer" (a trial's alert was one, its
    # reasons a new device's login); one that alerts for the call tells it, and is.
    save_artifact(tmp_path, "one", feature)
    artifact.promote("one", tmp_path)
    s = scene()
    (alert,), _ = score(stage(tmp_path), inflows(s.call(minutes_ago=8, minutes=3), s.transfer("800.00")))
    assert alert.typology == typology
    calls = [r for r in alert.reasons if r.startswith("the person had a")]
    assert bool(calls) == (typology == "call_then_transfer")
    # The evidence names the call only where the alert is about it.
    assert (len(alert.triggering_event_ids) == 2) == (typology == "call_then_transfer")


def _used_as_theirs(s: Scene, own: str, how: str, hours_ago: float) -> tuple[str, dict[str, Any]]:
    """An event of bank-b that shows the person using the account `own` there."""
    at = NOW - timedelta(hours=hours_ago)
    if how == "paid out of it":
        spent = f.transfer(
            s.victim, payer_account=own, payee_account=f.account("SHOP"), amount="300.00", at=at
        )
        return "bank-b", spent
    login = {
        "type": "bank.login",
        "event_id": f.unique("li"),
        "occurred_at": f.iso(at),
        "account": own,
        "holder_phone": s.victim,
        "device_id": "the-persons-phone",
        "new_device": how == "a new device signed in",
    }
    return "bank-b", login


@pytest.mark.parametrize(
    ("how", "hours_ago", "alerted"),
    [
        ("paid out of it", 30, False),
        ("signed in from a known device", 30, False),
        ("paid out of it", 2, True),
        ("a new device signed in", 30, True),
    ],
)
def test_money_moved_to_the_persons_own_account_is_not_scored_once_the_account_is_theirs(
    model_dir: Path, how: str, hours_ago: float, alerted: bool
) -> None:
    # A foreign world's false alerts: people moving a round sum to their account at another bank. A "safe
    # account" opened in the victim's name for the scammers pays them within hours of the first deposit,
    # and the scammers sign in from their own device: neither makes the account the victim's.
    s = scene()
    own = replace(s, payee_account=f.account("OWN"), payee_bank="bank-b")
    used = _used_as_theirs(s, own.payee_account, how, hours_ago)
    moves = movements(used, own.call(reported=True), own.transfer("30000.00"))
    assert [m.to_own_account for m in moves if m.direction == "in"][-1] is not alerted
    alerts, _ = score(stage(model_dir), moves)
    assert [a.reasons[0] for a in alerts] == ([REPORTED] if alerted else [])
