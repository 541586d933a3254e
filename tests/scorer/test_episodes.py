"""One alert per scam episode: a victim's later payments update the open alert (revision and amount at
risk grow), whichever payee they go to, once stage one has the alert back from the alerts topic; an
ordinary payment meanwhile raises nothing; a payment scored again after a late call revises the alert
only if it tells more;
the victims of one collection account share its incident, each alerted (so warned) once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import orjson
from aiokafka import ConsumerRecord

from models.features.vector import FEATURE_NAMES
from services.scorer.account_stage import MULE_TRIGGERS_MAX, AccountStage
from services.scorer.books import Book
from services.scorer.person_stage import PersonStage
from services.scorer.settings import ScorerSettings
from streams import keys, topics
from streams.producer import Record
from streams.schemas.alerts import Alert, incident_id_for
from streams.schemas.movements import Movement, movement_adapter
from tests import factories as f
from tests.scorer.scenes import NOW, Scene, event_record, scene, score, stage_one, unused_producer

NEW = FEATURE_NAMES.index("payee_new")
AMOUNT = FEATURE_NAMES.index("amount_log10")


class NewPayeeModel:
    """Alerts on payments of 1,000 CNY or more to payees never paid; enough of ModelSlot for the stage."""

    threshold = 0.5
    live = SimpleNamespace(
        contributions=lambda rows: np.zeros(rows.shape),
        typology=lambda rows: [("impersonation_police", 0.8)] * len(rows),
        version="stub",
    )

    def score(self, rows: np.ndarray) -> np.ndarray:
        return np.where((rows[:, NEW] == 1) & (rows[:, AMOUNT] >= 3), 0.99, 0.01)

    def maybe_swap(self) -> None:
        return None


def accounts() -> AccountStage:
    settings = ScorerSettings(model_warmup_hours=0)
    return AccountStage(settings, unused_producer(), prefix="", version="t", model=NewPayeeModel())  # type: ignore[arg-type]


def through(persons: PersonStage, *events: tuple[str, dict]) -> list[Movement]:
    from streams.schemas.movements import movement_adapter

    out: list[Record] = []
    for offset, (institution, event) in enumerate(events):
        persons._one(0, event_record(institution, event, 1000 + offset), out)
    moves = [movement_adapter.validate_json(r.value) for r in out]
    return [m for m in moves if m.direction == "in"]


def back(persons: PersonStage, alert: Alert) -> None:
    """The alert as stage one reads it from the alerts topic."""
    key = keys.person_key(alert.subject.phone or "")
    record = ConsumerRecord(
        topics.ALERTS.name,
        keys.partition_of(key, topics.EVENT_PARTITIONS),
        0,
        0,
        0,
        key,
        orjson.dumps(alert.model_dump(mode="json")),
        None,
        0,
        0,
        (),
    )
    persons._alert(0, record)


def test_a_second_payment_to_the_same_payee_is_a_revision() -> None:
    s = scene()
    stage_two = accounts()
    (first,), _ = score(stage_two, through(stage_one(), s.call(), s.transfer("30000.00", minutes_ago=10)))
    (second,), _ = score(stage_two, through(stage_one(), s.transfer("18000.00", minutes_ago=5)))
    assert second.alert_id == first.alert_id and (first.revision, second.revision) == (1, 2)
    assert Decimal(second.amount_at_risk or "0") == Decimal("48000.00")
    assert len(second.payments) == 2 and second.incident_id == incident_id_for(s.payee_bank, s.payee_account)


def test_a_payment_to_another_payee_continues_the_episode_once_stage_one_knows_the_alert() -> None:
    s = scene()
    persons, stage_two = stage_one(), accounts()
    (alert,), _ = score(stage_two, through(persons, s.call(), s.transfer("30000.00", minutes_ago=10)))
    back(persons, alert)
    other = Scene(s.victim, s.caller, s.payer_account, "MULE2OTHER")
    (revision,), _ = score(stage_two, through(persons, other.transfer("20000.00", minutes_ago=4)))
    assert revision.alert_id == alert.alert_id and revision.revision == 2
    assert [p.payee_account for p in revision.payments] == [s.payee_account, "MULE2OTHER"]
    assert Decimal(revision.amount_at_risk or "0") == Decimal("50000.00")
    # An ordinary payment meanwhile (a small one, to a payee paid before): no revision, no new alert.
    friend = Scene(s.victim, s.caller, s.payer_account, "FRIEND0001")
    through(persons, friend.transfer("50.00", minutes_ago=600))
    assert score(stage_two, through(persons, friend.transfer("60.00", minutes_ago=2)))[0] == []


def test_two_payees_paid_before_stage_one_hears_of_the_alert_make_one_alert() -> None:
    s = scene()
    persons, stage_two = stage_one(), accounts()
    other = Scene(s.victim, s.caller, s.payer_account, "MULE2OTHER")
    # Both payments reach stage two (two partitions) before the first alert comes back round.
    first_moves = through(persons, s.call(), s.transfer("30000.00", minutes_ago=10))
    second_moves = through(persons, other.transfer("20000.00", minutes_ago=9))
    (first,), _ = score(stage_two, first_moves)
    (second,), _ = score(accounts(), second_moves)
    assert second.alert_id == first.alert_id and (first.revision, second.revision) == (1, 1)
    # Back on the alerts topic, in either order: stage one keeps both payments, and the next payment, to
    # the second payee, is the next revision with all three.
    back(persons, second)
    back(persons, first)
    third = through(persons, other.transfer("10000.00", minutes_ago=5))
    (revision,), _ = score(stage_two, third)
    assert revision.alert_id == first.alert_id and revision.revision == 2
    assert [p.payee_account for p in revision.payments] == [s.payee_account, "MULE2OTHER", "MULE2OTHER"]
    assert Decimal(revision.amount_at_risk or "0") == Decimal("60000.00")


def test_the_alert_after_an_episode_has_an_id_of_its_own() -> None:
    s = scene()
    persons, stage_two = stage_one(), accounts()
    days_4 = 4 * 24 * 60
    episode = through(persons, s.call(minutes_ago=days_4 + 40), s.transfer("30000.00", minutes_ago=days_4))
    (alert,), _ = score(stage_two, episode)
    back(persons, alert)
    later = Scene(s.victim, s.caller, s.payer_account, "MULE3LATER")  # four days later, the episode closed
    (fresh,), _ = score(stage_two, through(persons, later.transfer("40000.00", minutes_ago=4)))
    assert fresh.alert_id != alert.alert_id and fresh.revision == 1


def test_a_payment_scored_again_never_gives_a_later_episode_the_last_alerts_id() -> None:
    """The first money-out since the last alert names the next alert's id; scored again after a late call,
    the payment that named the last one must not name the next one too (its episode would be merged into
    the old alert, and its victim not warned)."""
    s = scene()
    persons, stage_two = stage_one(), accounts()
    days_4 = 4 * 24 * 60
    small = s.transfer("50.00", minutes_ago=days_4 + 30)  # names the next alert's id; alerts on nothing
    assert score(stage_two, through(persons, small))[0] == []
    other = Scene(s.victim, s.caller, s.payer_account, "MULE4OTHER")
    (first,), _ = score(stage_two, through(persons, other.transfer("30000.00", minutes_ago=days_4)))
    back(persons, first)
    # A call during the small payment, reported late: both payments are scored again; the small one raises
    # nothing, the alerted one revises its alert (the call, from a number reported for fraud, makes it
    # call_then_transfer).
    rescored = through(persons, s.call(minutes_ago=days_4 + 40, minutes=15, reported=True))
    assert [m.event_ref for m in rescored if m.rescore][:1] == [through_ref(small)]
    assert [(a.alert_id, a.revision) for a in score(stage_two, rescored)[0]] == [(first.alert_id, 2)]
    later = Scene(s.victim, s.caller, s.payer_account, "MULE5LATER")  # four days on: a new episode
    (fresh,), _ = score(stage_two, through(persons, later.transfer("40000.00", minutes_ago=4)))
    assert fresh.alert_id != first.alert_id and fresh.revision == 1


def through_ref(event: tuple[str, dict]) -> str:
    institution, body = event
    return f"{institution}:{body['event_id']}"


def test_a_call_reported_after_the_payment_revises_its_alert() -> None:
    """A telecom reports a call when it ends; the victim paid during it, so the bank's transfer came first
    and alerted on its own. The call, from a number reported for fraud, reaches the alert as its next
    revision: the police and the citizen's warning get the call, the number's reason and the kind."""
    s = scene()
    persons, stage_two = stage_one(), accounts()
    paid = s.transfer("50000.00", minutes_ago=10)
    (alert,), _ = score(stage_two, through(persons, paid))
    assert (alert.typology, alert.revision) == ("suspicious_payment", 1)
    back(persons, alert)
    late_call = s.call(reported=True, minutes_ago=20, minutes=35)
    rescored = through(persons, late_call)
    assert [m.rescore for m in rescored] == [True]
    (revision,), _ = score(stage_two, rescored)
    assert (revision.alert_id, revision.revision) == (alert.alert_id, 2)
    assert revision.typology == "call_then_transfer"
    assert revision.reasons[0] == "the caller's number has been reported for fraud by its operator"
    assert revision.triggering_event_ids == [through_ref(late_call), through_ref(paid)]
    assert revision.payments == alert.payments and revision.amount_at_risk == alert.amount_at_risk
    assert revision.score >= alert.score


def test_a_payment_scored_again_that_tells_nothing_new_raises_nothing() -> None:
    s = scene()
    persons, stage_two = stage_one(), accounts()
    score(stage_two, through(persons, s.call(reported=True, minutes_ago=40), s.transfer("30000.00")))
    # A longer call during the payment, from another reported number, ends and is reported now: the payment
    # is scored again; its alert is already call_then_transfer, with that score and that hard rule.
    other = Scene(s.victim, f.phone(), s.payer_account, s.payee_account)
    rescored = through(persons, other.call(reported=True, minutes_ago=50, minutes=48))
    assert [m.rescore for m in rescored] == [True]
    assert score(stage_two, rescored)[0] == []


def test_the_victims_of_one_collection_account_share_an_incident_each_alerted_once() -> None:
    stage_two = accounts()
    mule = "MULE14VICTIMS"
    alerts = []
    for i in range(14):
        victim = scene(mule)
        found, _ = score(
            stage_two, through(stage_one(), victim.transfer(f"{2000 + i}.00", minutes_ago=30 - i))
        )
        alerts += found
    assert len(alerts) == 14 and len({a.subject.phone for a in alerts}) == 14
    assert {a.incident_id for a in alerts} == {incident_id_for("bank-x", mule)}
    assert {a.revision for a in alerts} == {1}


def test_a_mule_alert_names_at_most_its_newest_triggers() -> None:
    """A merchant-like account collecting from hundreds within the hour, then paying it all out: the alert
    names the newest triggers, so it stays far under Kafka's record size (refused at every restart else)."""
    stage_two = accounts()
    mule = "MULE400PAYERS"
    moves: list[Movement] = []
    for i in range(400):
        moves += through(stage_one(), scene(mule).transfer("50.00", minutes_ago=50 - i / 10))
    score(stage_two, moves)
    payout = f.transfer(
        f.phone(),
        payer_account=mule,
        payee_account=f.account(),
        amount="19000.00",
        at=NOW - timedelta(minutes=5),
    )
    persons = stage_one()
    out: list[Record] = []
    persons._one(0, event_record("bank-x", payout, 1), out)
    [outflow] = [m for m in (movement_adapter.validate_json(r.value) for r in out) if m.direction == "out"]
    alert = stage_two._outflow(stage_two.accounts.setdefault(0, Book()), outflow)
    assert alert is not None and alert.typology == "mule_fan_in"
    assert len(alert.triggering_event_ids) == MULE_TRIGGERS_MAX
    assert alert.triggering_event_ids[-1] == outflow.event_ref
    assert alert.triggering_event_ids[-2] == moves[-1].event_ref  # the newest payment in


def test_an_ordinary_payment_that_only_grows_the_alert_does_not_claim_to_be_a_scam() -> None:
    """A small payment to the episode's payee is sent as a revision (the amount at risk grows) though the
    model scores it low: its reasons say what it is, not "the model finds this payment likely a scam"."""
    s = scene()
    persons, stage_two = stage_one(), accounts()
    (first,), _ = score(stage_two, through(persons, s.call(), s.transfer("30000.00", minutes_ago=10)))
    (second,), _ = score(stage_two, through(persons, s.transfer("200.00", minutes_ago=5)))
    assert second.revision == 2 and second.score < first.score
    assert second.reasons[0] == "a further payment to a payee of this alert's episode"
    assert not any("likely a scam" in r for r in second.reasons)
