"""Feature values on hand-built event sequences: window edges and events out of order."""

from __future__ import annotations

from models.features.account import AccountState, Flow
from models.features.person import CALL_WINDOW_S, CallSeen, MoneyOut, PersonState

T0 = 1_800_000_000.0


def out(
    at: float, amount: float = 10_000, payee: str = "b/MULE1", new: bool = True, ref: str = "t"
) -> MoneyOut:
    return MoneyOut(at, payee, amount, new, ref, "bank-a", "ACC1", payee.split("/")[1], payee.split("/")[0])


def call(
    start: float, minutes: float, *, known: bool = False, reported: bool = False, ref: str = "c"
) -> CallSeen:
    return CallSeen("+447700900000", start, start + minutes * 60, reported, known, ref)


def test_call_counts_up_to_the_window_edge_after_it_ended():
    person = PersonState()
    person.record_call(call(T0, 20))
    end = T0 + 20 * 60
    inside, _ = person.features(out(end + CALL_WINDOW_S), 10)
    outside, _ = person.features(out(end + CALL_WINDOW_S + 1), 10)
    assert inside["call_present"] == 1.0
    assert inside["minutes_call_end_to_transfer"] == 60.0
    assert outside["call_present"] == 0.0


def test_transfer_during_the_call_has_negative_gap():
    person = PersonState()
    person.record_call(call(T0, 30))
    values, found = person.features(out(T0 + 10 * 60), 10)
    assert found is not None
    assert values["minutes_call_end_to_transfer"] == -20.0
    assert values["call_duration_min"] == 30.0


def test_transfer_before_the_call_started_is_not_linked():
    person = PersonState()
    person.record_call(call(T0, 30))
    values, _ = person.features(out(T0 - 1), 10)
    assert values["call_present"] == 0.0


def test_unknown_or_reported_caller_is_preferred_over_a_longer_known_one():
    person = PersonState()
    person.record_call(call(T0, 50, known=True, ref="friend"))
    person.record_call(call(T0 + 60, 10, known=False, ref="scam"))
    _, found = person.features(out(T0 + 55 * 60), 10)
    assert found is not None and found.ref == "scam"


def test_late_call_is_kept_in_time_order():
    person = PersonState()
    person.record_call(call(T0 + 3600, 5, ref="later"))
    person.record_call(call(T0, 5, ref="earlier"))  # arrives second
    assert [c.ref for c in person.calls] == ["earlier", "later"]


def test_contacts_make_a_caller_known_only_from_earlier_contact():
    person = PersonState()
    assert person.record_contact("+8613000000000", T0) is False
    assert person.record_contact("+8613000000000", T0 + 10) is True


def test_transfer_window_counts_the_last_hour_inclusive():
    person = PersonState()
    person.record_out(out(T0, 100, ref="a"))
    person.record_out(out(T0 + 1800, 200, ref="b"))
    values, _ = person.features(out(T0 + 3600, 300, ref="c"), 10)
    assert values["transfers_1h_count"] == 2.0  # a (exactly an hour before) and b; c is not recorded yet
    assert values["transfers_1h_sum"] == 300.0
    late_values, _ = person.features(out(T0 + 3601, 1, ref="d"), 10)
    assert late_values["transfers_1h_count"] == 1.0


def test_prune_drops_detail_beyond_the_recent_window_and_contacts_beyond_the_horizon():
    person = PersonState()
    person.record_contact("+8613000000001", T0)
    person.record_call(call(T0, 5))
    person.record_out(out(T0))
    person.prune(T0 + 3 * 3600, horizon_s=7 * 86_400)
    assert not person.calls and not person.outs
    assert "+8613000000001" in person.contacts
    person.prune(T0 + 8 * 86_400, horizon_s=7 * 86_400)
    assert not person.contacts


def test_new_device_and_sim_change_only_count_within_a_day_before():
    person = PersonState(sim_change_at=T0, new_device_at=T0 + 10)
    values, _ = person.features(out(T0 + 86_400), 3)
    assert values["sim_change_24h"] == 1.0 and values["new_device_24h"] == 1.0
    values, _ = person.features(out(T0 + 86_411), 3)
    assert values["sim_change_24h"] == 0.0 and values["new_device_24h"] == 0.0
    values, _ = person.features(out(T0 - 5), 3)
    assert values["sim_change_24h"] == 0.0


def test_account_fan_in_and_payout():
    acct = AccountState()
    for i in range(6):
        acct.add(acct.ins, Flow(T0 + i * 60, f"b/P{i}", 1000, f"in{i}"))
    acct.add(acct.ins, Flow(T0 + 30, "b/P0", 1000, "in-repeat"))  # same payer again, out of order
    acct.add(acct.outs, Flow(T0 + 600, "b/L2", 5600, "out1"))
    values = acct.features(T0 + 600)
    assert values["distinct_payers_1h"] == 6.0
    assert values["received_1h_sum"] == 7000.0
    assert values["payout_ratio"] == 0.8
    assert values["minutes_money_rests"] == 10.0
    assert [f.ref for f in acct.ins][:2] == ["in0", "in-repeat"]
    # An hour and a bit later the first inflow has left the window.
    assert acct.features(T0 + 3601)["distinct_payers_1h"] == 6.0  # P0 again via in-repeat at T0+30
    assert acct.features(T0 + 3631)["distinct_payers_1h"] == 5.0
