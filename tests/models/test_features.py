"""Feature values on hand-built event sequences: window edges, late and out-of-order events."""

from __future__ import annotations

import math
import random
import tracemalloc
from datetime import UTC, datetime

from models.features.account import PAYEE_FEATURES, AccountState, Reporters
from models.features.engine import PersonOutcome, WalletFlow, apply_person_event
from models.features.person import (
    CALL_WINDOW_S,
    PERSON_FEATURES,
    RECENT_MAX,
    RELATIONSHIP_CAP_H,
    SINCE_CAP_H,
    CallSeen,
    MoneyOut,
    PersonState,
)
from models.features.windows import Window, prune_due
from streams.schemas import events as ev

T0 = 1_800_000_000.0
P = {name: i for i, name in enumerate(PERSON_FEATURES)}
ME = "+8613900000001"


def out(
    at: float, amount: float = 10_000, payee: str = "b/MULE1", new: bool = True, ref: str = "t"
) -> MoneyOut:
    return MoneyOut(at, payee, amount, new, ref, "bank-a", "ACC1", payee.split("/")[1], payee.split("/")[0])


def call(
    start: float, minutes: float, *, known: bool = False, reported: bool = False, ref: str = "c"
) -> CallSeen:
    return CallSeen("+447700900000", start, start + minutes * 60, reported, known, ref)


def feats(person: PersonState, money: MoneyOut) -> dict[str, float]:
    values, _ = person.features(money)
    return dict(zip(PERSON_FEATURES, values, strict=True))


def test_empty_windows_share_nothing_they_change_and_stay_small():
    a, b = Window(60.0), Window(60.0)
    a.add(T0, "x", 5.0)
    assert (a.stats(T0), b.stats(T0)) == ((1, 5.0, 1), (0, 0.0, 0))
    assert a.stats(T0 + 61) == (0, 0.0, 0)  # its entry expired: a is empty again
    b.add(T0 + 100, "y", 1.0)
    a.add(T0 + 110, "z", 2.0)
    assert (a.stats(T0 + 110), b.stats(T0 + 110)) == ((1, 2.0, 1), (1, 1.0, 1))
    given = Window(60.0, times=[T0], keys=["k"], amounts=[3.0], total=3.0)  # its counter left to default
    assert given.stats(T0 + 61) == (0, 0.0, 0)  # expiring "k" must not touch what empty windows share
    assert Window(60.0).distinct == {} and Window(60.0).times == []
    tracemalloc.start()
    try:
        people = [PersonState() for _ in range(1000)]
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(people) == 1000 and used < 1000 * 1600  # nine windows each: was 3.4 KB a person


def test_window_edges_are_inclusive_and_expire_after_the_span():
    w = Window(3600)
    w.add(T0, "a", 100)
    w.add(T0 + 1800, "b", 200)
    assert w.stats(T0 + 3600) == (2, 300.0, 2)  # exactly an hour after the first: still in
    assert w.stats(T0 + 3601) == (1, 200.0, 1)


def test_window_puts_a_late_event_in_order_and_ignores_one_older_than_the_span():
    w = Window(3600)
    w.add(T0 + 600, "a", 1)
    w.add(T0 + 100, "b", 2)  # late, but inside the window
    w.add(T0 - 4000, "c", 4)  # older than the window already is: ignored
    assert list(w.times) == [T0 + 100, T0 + 600]
    assert w.stats(T0 + 600) == (2, 3.0, 2)
    # Asked about a moment before the newest entry, it leaves later entries out.
    assert w.stats(T0 + 300) == (1, 2.0, 1)


def test_window_is_bounded_by_count():
    w = Window(86_400, cap=10)
    for i in range(25):
        w.add(T0 + i, f"k{i % 3}", 1.0)
    assert w.stats(T0 + 25) == (10, 10.0, 3)


def test_call_counts_up_to_the_window_edge_after_it_ended():
    person = PersonState()
    person.record_call(call(T0, 20))
    end = T0 + 20 * 60
    inside = feats(person, out(end + CALL_WINDOW_S))
    outside = feats(person, out(end + CALL_WINDOW_S + 1))
    assert inside["call_present"] == 1.0 and inside["minutes_call_end_to_transfer"] == 60.0
    assert outside["call_present"] == 0.0


def test_transfer_during_the_call_has_negative_gap():
    person = PersonState()
    person.record_call(call(T0, 30))
    values = feats(person, out(T0 + 10 * 60))
    assert values["minutes_call_end_to_transfer"] == -20.0
    assert values["call_duration_min"] == 30.0 and values["caller_international"] == 1.0


def test_reported_caller_is_preferred_over_a_longer_unknown_one():
    person = PersonState()
    person.record_call(call(T0, 50, ref="long"))
    person.record_call(call(T0 + 60, 10, reported=True, ref="reported"))
    found = person.suspicious_call_before(out(T0 + 55 * 60))
    assert found is not None and found.ref == "reported"


def test_late_call_returns_the_money_outs_to_score_again():
    person = PersonState()
    person.record_out(out(T0 + 600, ref="during"))
    person.record_out(out(T0 - 60, ref="before"))  # also out of order
    again = person.record_call(call(T0, 20, ref="late"))
    assert [o.ref for o in again] == ["during"]
    assert [o.ref for o in person.outs] == ["before", "during"]


def test_late_call_rescoring_only_what_it_now_explains():
    person = PersonState()
    person.record_call(call(T0, 30, reported=True, ref="scam"))
    person.record_out(out(T0 + 600, ref="during"))
    # A late, shorter call from an unknown number: the payment still follows the reported call.
    assert person.record_call(call(T0 + 300, 5, ref="other")) == []
    # A late, longer reported call: the payment now follows it, and is scored again.
    again = person.record_call(call(T0 + 60, 40, reported=True, ref="longer"))
    assert [o.ref for o in again] == ["during"]


def test_late_call_rescoring_matches_the_call_before_of_every_money_out():
    """record_call finds the money-outs whose call-before the new call becomes without asking each of
    them: on random busy histories it must name exactly those the definition names."""
    rng = random.Random(7)
    for _ in range(200):
        person = PersonState()
        for i in range(rng.randint(1, 30)):
            if rng.random() < 0.5:
                person.record_out(out(T0 + rng.uniform(0, 7200), ref=f"o{i}"))
                continue
            new = call(
                T0 + rng.choice((0, 60, 600, 1800, rng.uniform(0, 7200))),
                rng.choice((1, 5, 20, rng.uniform(0, 60))),
                known=rng.random() < 0.4,
                reported=rng.random() < 0.2,
                ref=f"c{i}",
            )
            found = person.record_call(new)
            expected = [
                o
                for o in person.outs
                if new.start <= o.at <= new.end + CALL_WINDOW_S and person.suspicious_call_before(o) is new
            ]
            assert found == expected


def test_detail_of_a_switchboard_number_stays_bounded():
    person = PersonState()
    for i in range(3 * RECENT_MAX):
        person.record_call(call(T0 + i, 1, ref=f"c{i}"))
        person.record_out(out(T0 + i + 30, ref=f"o{i}"))
    assert len(person.calls) == len(person.outs) == RECENT_MAX
    assert person.calls[-1].ref == f"c{3 * RECENT_MAX - 1}" and person.outs[0].ref == f"o{2 * RECENT_MAX}"


def test_velocity_payee_history_and_typical_amount():
    person = PersonState()
    person.seen(T0 - 86_400)
    for i, amount in enumerate((100.0, 100.0, 100.0)):
        person.record_out(out(T0 + i * 600, amount, payee="b/SHOP", new=i == 0, ref=f"r{i}"))
    big = out(T0 + 3000, 10_000, payee="b/SHOP", new=False, ref="big")
    person.record_out(big)
    values = feats(person, big)
    assert values["outs_1h_count"] == 4.0 and values["outs_10m_count"] == 1.0  # 10 min: only itself
    assert values["payee_prior_count"] == 3.0 and values["payee_new"] == 0.0
    assert values["amount_vs_typical"] == 2.0  # log10(10000) - log10(100)
    assert values["new_payees_24h"] == 1.0
    assert values["prior_money_outs"] == 3.0


def test_no_feature_grows_with_how_long_stopline_has_watched():
    """A month of ordinary history and one day of it give the same features for the same payment: what a
    deployment's age would change (known days, account age, lifetime counts) is no feature. Only the
    count of earlier payments to this payee differs, a novelty count capped at 50."""

    def history(days: int) -> dict[str, float]:
        person = PersonState()
        for d in range(days):
            for i in range(30):
                at = T0 - (days - d) * 86_400 + i * 600
                person.seen(at)
                person.record_out(out(at, 100.0, payee="b/SHOP", new=False, ref=f"d{d}-{i}"))
        payment = out(T0 + 60, 100.0, payee="b/SHOP", new=False, ref="now")
        person.record_out(payment)
        return feats(person, payment)

    short, long = history(1), history(30)
    assert {k: v for k, v in short.items() if k != "payee_prior_count"} == {
        k: v for k, v in long.items() if k != "payee_prior_count"
    }


def test_hours_since_a_sim_change_or_a_new_device_are_capped_at_three_days():
    person = PersonState(sim_change_at=T0, new_device_at=T0 + 1800)
    values = feats(person, out(T0 + 3600))
    assert values["hours_since_sim_change"] == 1.0 and values["hours_since_new_device"] == 0.5
    values = feats(person, out(T0 + 80 * 3600))
    assert values["hours_since_sim_change"] == values["hours_since_new_device"] == SINCE_CAP_H
    never = feats(PersonState(), out(T0))
    assert never["hours_since_sim_change"] == never["hours_since_new_device"] == SINCE_CAP_H
    # A change after the payment (reported late) says nothing about it.
    assert feats(PersonState(sim_change_at=T0 + 60), out(T0))["hours_since_sim_change"] == SINCE_CAP_H


def test_an_unknown_call_then_a_new_payee_is_a_sequence_a_known_caller_or_payee_is_not():
    # Its value is the call's minutes: the longer the call before the payment, the stronger the sequence.
    for known, new, expected in ((False, True, 30.0), (True, True, 0.0), (False, False, 0.0)):
        person = PersonState()
        person.record_call(call(T0, 30, known=known))
        assert feats(person, out(T0 + 40 * 60, new=new))["seq_unknown_call_new_payee"] == expected


def test_a_link_sms_then_a_new_device_then_a_payment_is_a_sequence():
    person = PersonState()
    person.record_link_sms("+8617012345678", T0)
    person.record_new_device(T0 + 3 * 3600)
    assert feats(person, out(T0 + 3 * 3600 + 600))["seq_link_new_device_payment"] == 1.0
    assert (
        feats(person, out(T0 + 6 * 3600))["seq_link_new_device_payment"] == 0.0
    )  # the login was long before
    alone = PersonState()
    alone.record_new_device(T0)  # a new phone, no link before it
    assert feats(alone, out(T0 + 600))["seq_link_new_device_payment"] == 0.0
    late = PersonState()
    late.record_link_sms("+8617012345678", T0 - 2 * 86_400)  # two days before the login: not its cause
    late.record_new_device(T0)
    assert feats(late, out(T0 + 600))["seq_link_new_device_payment"] == 0.0


def test_a_sim_change_then_a_payment_to_a_new_payee_is_a_sequence():
    person = PersonState(sim_change_at=T0)
    assert feats(person, out(T0 + 3600, new=True))["seq_sim_change_payment"] == 1.0
    assert feats(person, out(T0 + 3600, new=False))["seq_sim_change_payment"] == 0.0
    person.record_new_device(T0 + 1800)  # a new device after the swap: any payment counts
    assert feats(person, out(T0 + 3600, new=False))["seq_sim_change_payment"] == 1.0
    assert feats(person, out(T0 + 25 * 3600, new=True))["seq_sim_change_payment"] == 0.0


def test_a_top_up_then_a_wallet_payment_to_a_new_payee_is_a_sequence():
    person = PersonState(topup_at=T0)
    wallet = out(T0 + 600, 3000, payee="pay-a/PM1", new=True)
    wallet = MoneyOut(
        wallet.at, wallet.payee, wallet.amount, True, "w", "pay-a", "PA1", "PM1", "pay-a", wallet=True
    )
    assert feats(person, wallet)["seq_topup_new_payee"] == 1.0
    assert feats(PersonState(topup_at=T0 - 7200), wallet)["seq_topup_new_payee"] == 0.0
    assert feats(person, out(T0 + 600))["seq_topup_new_payee"] == 0.0  # a bank transfer, not the wallet


def test_prune_drops_detail_beyond_the_recent_window_and_contacts_beyond_the_horizon():
    person = PersonState()
    person.record_contact("+8613000000001", T0)
    person.record_call(call(T0, 5))
    person.record_out(out(T0))
    person.prune(T0 + 3 * 3600, horizon_s=7 * 86_400)
    assert not person.calls and not person.outs
    assert "+8613000000001" in person.contacts
    person.prune(T0 + 8 * 86_400, horizon_s=7 * 86_400)
    assert not person.contacts and not person.payees


def test_account_fan_in_money_rests_and_replays():
    acct = AccountState()
    for i in range(6):
        assert acct.record_in(T0 + i * 60, f"b/P{i}", 1000, f"in{i}")
    assert acct.record_in(T0 + 30, "b/P0", 1000, "in-repeat")  # same payer again, out of order
    assert not acct.record_in(T0 + 30, "b/P0", 1000, "in-repeat")  # a replay is not counted twice
    assert acct.record_out(T0 + 600, "b/L2", 5600, "out1")
    f = dict(zip(PAYEE_FEATURES, acct.payee_features(T0 + 600, "b/P9", True), strict=True))
    assert f["payee_payers_1h"] == 6.0  # distinct payers in the hour
    assert f["payee_payout_ratio_24h"] == 0.8  # paid out 5600 of 7000
    assert f["payee_minutes_money_rests"] == 10.0  # the oldest inflow waited 10 minutes
    mule = acct.mule_features(T0 + 600)
    assert mule["distinct_payers_1h"] == 6.0 and mule["minutes_money_rests"] == 10.0
    assert acct.mule_features(T0 + 3631)["distinct_payers_1h"] == 5.0  # P0 and its repeat left the hour


def test_a_payee_that_paid_the_payer_and_a_payee_whose_outflows_are_unseen():
    acct = AccountState()
    assert acct.record_out(T0, "bank-a/ACC1", 50, "refund")  # the "commission" of a job scam
    f = dict(zip(PAYEE_FEATURES, acct.payee_features(T0 + 600, "bank-a/ACC1", True), strict=True))
    assert f["payee_paid_payer_24h"] == 1.0 and f["payee_outflows_seen"] == 1.0
    f = dict(zip(PAYEE_FEATURES, acct.payee_features(T0 + 600, "bank-a/ACC2", False), strict=True))
    assert f["payee_paid_payer_24h"] == 0.0 and f["payee_outflows_seen"] == 0.0


def test_reporters_are_the_institutions_seen_paying_out_lately():
    reporters = Reporters()
    reporters.saw("bank-a", T0)
    assert reporters.reports("bank-a", T0 + 86_400) and not reporters.reports("bank-z", T0)
    assert not reporters.reports("bank-a", T0 + 3 * 86_400)  # silent for longer than REPORTING_S


def _transfer(at: float, payee: str, amount: str, ref: str) -> ev.Transfer:
    return ev.Transfer(
        type="bank.transfer",
        event_id=ref,
        occurred_at=datetime.fromtimestamp(at, UTC),
        payer_account="ACC1",
        payer_phone=ME,
        payee_account=payee,
        payee_institution="bank-b",
        amount=amount,
    )


def test_engine_scores_a_money_out_and_again_when_its_call_arrives_late():
    people: dict[str, PersonState] = {}
    first = apply_person_event(
        people, "bank-a", _transfer(T0, "MULE1", "30000", "t1"), "bank-a:t1", 7 * 86_400
    )
    assert len(first) == 1 and isinstance(first[0], PersonOutcome)
    assert not first[0].rescore and first[0].call is None
    late_call = ev.Call(
        type="telecom.call",
        event_id="c1",
        occurred_at=datetime.fromtimestamp(T0 - 600, UTC),
        caller="+17025550100",
        callee=ME,
        duration_s=1800,
    )
    again = apply_person_event(people, "telecom-a", late_call, "telecom-a:c1", 7 * 86_400)
    assert len(again) == 1 and isinstance(again[0], PersonOutcome)
    assert again[0].rescore and again[0].call is not None
    values = dict(zip(PERSON_FEATURES, again[0].features, strict=True))
    assert values["call_duration_min"] == 30.0 and values["minutes_call_end_to_transfer"] == -20.0
    assert values["telecom_seen"] == 1.0  # the operator reports: a missing call is a call that did not happen


def _sim_change(at: float, event_id: str) -> ev.SimChange:
    return ev.SimChange(
        type="telecom.sim_change",
        event_id=event_id,
        occurred_at=datetime.fromtimestamp(at, UTC),
        subscriber=ME,
    )


def test_engine_scores_again_the_money_outs_after_a_sim_change_that_arrives_late():
    people: dict[str, PersonState] = {}
    horizon = 7 * 86_400
    apply_person_event(people, "bank-a", _transfer(T0 - 3600, "SHOP1", "80", "t0"), "bank-a:t0", horizon)
    apply_person_event(people, "bank-a", _transfer(T0, "MULE1", "30000", "t1"), "bank-a:t1", horizon)
    # Changed 20 minutes before the transfer, read after it: the transfer (not the payment before the
    # change) is scored again, with the change.
    again = apply_person_event(people, "telecom-a", _sim_change(T0 - 1200, "s1"), "telecom-a:s1", horizon)
    assert [o.money.ref for o in again if isinstance(o, PersonOutcome)] == ["bank-a:t1"]
    assert isinstance(again[0], PersonOutcome) and again[0].rescore
    values = dict(zip(PERSON_FEATURES, again[0].features, strict=True))
    assert round(values["hours_since_sim_change"], 2) == 0.33 and values["seq_sim_change_payment"] == 1.0
    # The same change again, or an older one, changes nothing and scores nothing again.
    assert (
        apply_person_event(people, "telecom-a", _sim_change(T0 - 1200, "s1"), "telecom-a:s1", horizon) == []
    )
    assert (
        apply_person_event(people, "telecom-a", _sim_change(T0 - 7200, "s0"), "telecom-a:s0", horizon) == []
    )
    # In order (the change first), the money-out is scored once, when it comes.
    people = {}
    assert (
        apply_person_event(people, "telecom-a", _sim_change(T0 - 1200, "s2"), "telecom-a:s2", horizon) == []
    )
    first = apply_person_event(people, "bank-a", _transfer(T0, "MULE1", "30000", "t2"), "bank-a:t2", horizon)
    assert len(first) == 1 and isinstance(first[0], PersonOutcome) and not first[0].rescore


def _link_sms(at: float, event_id: str) -> ev.Sms:
    return ev.Sms(
        type="telecom.sms",
        event_id=event_id,
        occurred_at=datetime.fromtimestamp(at, UTC),
        sender="+8617099990000",
        recipient=ME,
        contains_link=True,
    )


def _new_device(at: float, event_id: str) -> ev.Login:
    return ev.Login(
        type="bank.login",
        event_id=event_id,
        occurred_at=datetime.fromtimestamp(at, UTC),
        account="ACC1",
        holder_phone=ME,
        device_id="d2",
        new_device=True,
    )


def test_engine_scores_again_the_money_outs_after_a_link_sms_or_new_device_that_arrive_late():
    # An account takeover read in the worst order: the transfer, then the new device's login, then the SMS
    # with the link that gave it away. Each late step scores the transfer again; after the SMS it is the
    # whole sequence.
    people: dict[str, PersonState] = {}
    horizon = 7 * 86_400
    apply_person_event(people, "bank-a", _transfer(T0 - 7000, "SHOP1", "80", "t0"), "bank-a:t0", horizon)
    apply_person_event(people, "bank-a", _transfer(T0, "MULE1", "30000", "t1"), "bank-a:t1", horizon)
    again = apply_person_event(people, "bank-a", _new_device(T0 - 600, "l1"), "bank-a:l1", horizon)
    assert [(o.money.ref, o.rescore) for o in again if isinstance(o, PersonOutcome)] == [("bank-a:t1", True)]
    assert isinstance(again[0], PersonOutcome)
    values = dict(zip(PERSON_FEATURES, again[0].features, strict=True))
    assert round(values["hours_since_new_device"], 2) == 0.17 and values["seq_link_new_device_payment"] == 0.0
    last = apply_person_event(people, "telecom-a", _link_sms(T0 - 3600, "m1"), "telecom-a:m1", horizon)
    assert [(o.money.ref, o.rescore) for o in last if isinstance(o, PersonOutcome)] == [("bank-a:t1", True)]
    assert isinstance(last[0], PersonOutcome)
    values = dict(zip(PERSON_FEATURES, last[0].features, strict=True))
    assert values["link_sms_7d"] == 1.0 and values["seq_link_new_device_payment"] == 1.0
    # An older login than the one known changes nothing and scores nothing again; nor does the same SMS
    # again, nor another one that tells the transfer nothing new (it was texted in the week before).
    assert apply_person_event(people, "bank-a", _new_device(T0 - 1200, "l0"), "bank-a:l0", horizon) == []
    assert apply_person_event(people, "telecom-a", _link_sms(T0 - 3600, "m1"), "telecom-a:m1", horizon) == []
    assert apply_person_event(people, "telecom-a", _link_sms(T0 - 1800, "m3"), "telecom-a:m3", horizon) == []
    # The login read last, after two texts (the later one after the login): the earlier text still makes
    # it the sequence's second step.
    people = {}
    apply_person_event(people, "telecom-a", _link_sms(T0 - 3600, "m4"), "telecom-a:m4", horizon)
    apply_person_event(people, "telecom-a", _link_sms(T0 - 300, "m5"), "telecom-a:m5", horizon)
    apply_person_event(people, "bank-a", _transfer(T0, "MULE1", "30000", "t3"), "bank-a:t3", horizon)
    again = apply_person_event(people, "bank-a", _new_device(T0 - 600, "l3"), "bank-a:l3", horizon)
    assert isinstance(again[0], PersonOutcome)
    assert dict(zip(PERSON_FEATURES, again[0].features, strict=True))["seq_link_new_device_payment"] == 1.0
    # In order, each step comes before the money-out, which is scored once, when it comes.
    people = {}
    assert apply_person_event(people, "telecom-a", _link_sms(T0 - 3600, "m2"), "telecom-a:m2", horizon) == []
    assert apply_person_event(people, "bank-a", _new_device(T0 - 600, "l2"), "bank-a:l2", horizon) == []
    first = apply_person_event(people, "bank-a", _transfer(T0, "MULE1", "30000", "t2"), "bank-a:t2", horizon)
    assert len(first) == 1 and isinstance(first[0], PersonOutcome) and not first[0].rescore
    values = dict(zip(PERSON_FEATURES, first[0].features, strict=True))
    assert values["seq_link_new_device_payment"] == 1.0


def test_no_feature_is_the_time_of_day():
    # Scams follow the day's rhythm as ordinary life does: the hour told nothing, and was said as a reason.
    assert not [name for name in PERSON_FEATURES if "hour_of_day" in name]


def test_wallet_top_ups_and_withdrawals_are_money_movements():
    people: dict[str, PersonState] = {}
    topup = ev.TopUp(
        type="payment.topup",
        event_id="u1",
        occurred_at=datetime.fromtimestamp(T0, UTC),
        account="PA000000000001",
        holder_phone=ME,
        amount="5000",
        source_account="ACC1",
    )
    withdrawal = ev.Withdrawal(
        type="payment.withdrawal",
        event_id="w1",
        occurred_at=datetime.fromtimestamp(T0 + 60, UTC),
        account="PA000000000001",
        holder_phone=ME,
        amount="4900",
        destination_account="ACC9",
    )
    (flow_in,) = apply_person_event(people, "pay-a", topup, "pay-a:u1", 7 * 86_400)
    (flow_out,) = apply_person_event(people, "pay-a", withdrawal, "pay-a:w1", 7 * 86_400)
    assert flow_in == WalletFlow(ME, "in", "pay-a", "PA000000000001", "ACC1", 5000.0, T0, "pay-a:u1")
    assert isinstance(flow_out, WalletFlow) and flow_out.direction == "out" and flow_out.amount == 4900.0
    assert people[ME].topup_at == T0


def test_books_are_pruned_once_a_minute_of_event_time_not_per_event():

    assert prune_due(0.0, T0)  # a new entity
    minute = T0 - T0 % 60
    assert not prune_due(minute + 1, minute + 59)  # within one minute: no walk
    assert prune_due(minute + 59, minute + 60)  # into the next: pruned


def test_a_payee_first_paid_this_week_its_step_up_and_the_money_to_new_payees():
    """An investment scam's pattern: a payee first paid yesterday, paid again three times as much; the
    week's money to new payees adds up. A regular payee is none of these."""
    person = PersonState()
    person.record_out(out(T0 - 5 * 86_400, 200.0, payee="b/RENT", new=True, ref="rent0"))
    person.record_out(out(T0 - 86_400, 1_000.0, payee="b/INVEST", new=True, ref="i0"))
    first = feats(person, out(T0 - 86_400, 1_000.0, payee="b/INVEST", new=True, ref="i0"))
    assert first["payee_first_paid_h"] == 0.0 and first["amount_vs_last_to_payee"] == 0.0
    assert first["to_recent_payees_7d_sum_log10"] == math.log10(1_001.0)
    again = out(T0, 3_000.0, payee="b/INVEST", new=False, ref="i1")
    person.record_out(again)
    values = feats(person, again)
    assert values["payee_first_paid_h"] == 24.0
    assert values["amount_vs_last_to_payee"] == math.log10(3_000.0) - math.log10(1_000.0)
    assert values["to_recent_payees_7d_sum_log10"] == math.log10(4_001.0)
    # The rent payee was first paid with the person's first money-out Stopline saw: an old relationship.
    rent = out(T0 + 60, 200.0, payee="b/RENT", new=False, ref="rent1")
    person.record_out(rent)
    values = feats(person, rent)
    assert values["payee_first_paid_h"] == RELATIONSHIP_CAP_H and values["amount_vs_last_to_payee"] == 0.0
    assert values["to_recent_payees_7d_sum_log10"] == math.log10(4_001.0)


def test_a_persons_first_day_of_payments_holds_no_new_relationship():
    """Stopline's first day of a person's payments (a deployment, a bank that starts reporting): a payee
    paid twice in it is not told apart from a regular one, and none of it counts as money to new payees;
    calls seen before change nothing."""
    person = PersonState()
    person.seen(T0 - 10 * 86_400)  # a call, ten days before the first payment seen
    person.record_out(out(T0, 500.0, payee="b/SHOP", new=True, ref="s0"))
    second = out(T0 + 120, 500.0, payee="b/SHOP", new=False, ref="s1")
    person.record_out(second)
    values = feats(person, second)
    assert values["payee_first_paid_h"] == RELATIONSHIP_CAP_H
    assert values["to_recent_payees_7d_sum_log10"] == 0.0


def test_steps_are_from_the_payment_before_in_time_late_or_rescored():
    person = PersonState()
    person.record_out(out(T0, 100.0, payee="b/X", new=True, ref="a"))
    person.record_out(out(T0 + 600, 400.0, payee="b/X", new=False, ref="b"))
    late = out(T0 + 300, 800.0, payee="b/X", new=False, ref="late")
    person.record_out(late)
    assert feats(person, late)["amount_vs_last_to_payee"] == math.log10(800.0) - math.log10(100.0)
    # A first payment scored again (a late call) after a smaller one followed it: still no step, still new.
    big = out(T0 + 3 * 86_400, 5_000.0, payee="b/Y", new=True, ref="big")
    person.record_out(big)
    person.record_out(out(T0 + 3 * 86_400 + 60, 100.0, payee="b/Y", new=False, ref="small"))
    again = feats(person, big)
    assert again["amount_vs_last_to_payee"] == 0.0 and again["payee_first_paid_h"] == 0.0


def test_a_payment_scored_again_is_not_compared_with_the_payments_made_after_it():
    """Both paid during the call, whose record comes when it ends: the first payment, scored again then,
    has the history it had when it was made, whichever order the payments and the call arrived in."""
    person = PersonState()
    person.record_out(out(T0 - 86_400, 300.0, payee="b/SHOP", new=True, ref="old"))
    first = out(T0, 200.0, payee="b/MULE1", new=True, ref="first")
    person.record_out(first)
    before = feats(person, first)
    person.record_out(out(T0 + 240, 20_000.0, payee="b/MULE1", new=False, ref="second"))
    again = feats(person, first)
    for name in ("amount_vs_typical", "prior_money_outs", "payee_prior_count"):
        assert again[name] == before[name], name
    assert before["prior_money_outs"] == 1.0 and before["payee_prior_count"] == 0.0
    assert before["amount_vs_typical"] == math.log10(200.0) - math.log10(300.0)
