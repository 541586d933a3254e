"""Normal traffic validates against the event schemas and is deterministic by seed."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from services.simulator.model import INSTITUTIONS, IdSource
from services.simulator.normal import MAX_NORMAL_TRANSFER, MIX, NormalTraffic
from services.simulator.population import build_population
from services.simulator.world import World
from streams.schemas.events import Call, Transfer, event_adapter

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def generate(n: int, seed: int = 1) -> list:
    pop = build_population(500, seed=seed)
    traffic = NormalTraffic(pop, IdSource("t"), seed=seed)
    return [traffic.next(NOW) for _ in range(n)]


def test_every_event_validates_and_is_sent_by_an_institution_of_its_kind() -> None:
    events = generate(5000)
    for sim in events:
        event = event_adapter.validate_python(sim.body)
        assert INSTITUTIONS[sim.institution] == event.source
        assert sim.person_phone == event.person_phone
    assert len({e.event_id for e in events}) == len(events)
    kinds = Counter(e.body["type"] for e in events)
    assert set(kinds) >= {k for k, share in MIX.items() if share > 0.01}


def test_deterministic_by_seed() -> None:
    assert [e.body for e in generate(500, seed=4)] == [e.body for e in generate(500, seed=4)]
    assert [e.body for e in generate(50, seed=4)] != [e.body for e in generate(50, seed=5)]


def test_calls_mostly_from_contacts_and_reported_at_their_end() -> None:
    pop = build_population(500, seed=1)
    traffic = NormalTraffic(pop, IdSource("t"), seed=1)
    calls = [c for c in (traffic.next(NOW) for _ in range(5000)) if c.body["type"] == "telecom.call"]
    from_contacts = 0
    for sim in calls:
        call = Call.model_validate(sim.body)
        assert call.occurred_at.timestamp() + call.duration_s == NOW.timestamp()  # dated at its start
        from_contacts += call.caller in pop.by_phone[call.callee].contacts
    share = 1 - traffic.world.stranger_call_share
    assert share - 0.05 < from_contacts / len(calls) < share + 0.05


def test_normal_transfers_stay_below_a_bound_and_mostly_go_to_usual_payees() -> None:
    pop = build_population(500, seed=1)
    traffic = NormalTraffic(pop, IdSource("t"), seed=1)
    events = [traffic.next(NOW) for _ in range(20_000)]
    transfers = [Transfer.model_validate(e.body) for e in events if e.body["type"] == "bank.transfer"]
    usual = sum(t.payee_account in {p.account for p in pop.by_phone[t.payer_phone].payees} for t in transfers)
    expected = 1 - traffic.world.new_payee_share
    assert expected - 0.05 < usual / len(transfers) < expected + 0.05
    # Large first-time payments (a car, a deposit) are hard negatives of their own (simulator.benign).
    assert all(t.amount <= Decimal(str(MAX_NORMAL_TRANSFER)) for t in transfers)


def test_a_person_day_is_about_the_worlds_pace() -> None:
    """20-30 events a person-day: the world draws the pace, the mix spreads it over the kinds."""
    pop = build_population(1000, seed=2)
    traffic = NormalTraffic(pop, IdSource("t"), seed=2)
    assert 20 <= traffic.world.events_per_person_day <= 30
    kinds = Counter(traffic.next(NOW).body["type"] for _ in range(30_000))
    per_day = {k: n / 30_000 * traffic.world.events_per_person_day for k, n in kinds.items()}
    assert 5 < per_day["telecom.call"] < 10 and 1 < per_day["bank.transfer"] < 3
    assert 3 < per_day["payment.payment"] + per_day["payment.topup"] + per_day["payment.withdrawal"] < 10


def test_paying_from_a_wallet_moves_no_other_draw() -> None:
    """Whichever share of transfers a world pays from wallets, the same people do the same things with
    the same counterparts and sums: only a transfer's channel changes."""
    seen = {}
    for share in (0.0, 1.0):
        world = dataclasses.replace(World.draw(1), wallet_share=share)
        traffic = NormalTraffic(build_population(500, seed=1), IdSource("t"), seed=1, world=world)
        seen[share] = [traffic.next(NOW) for _ in range(3000)]
    by_bank, by_wallet = seen[0.0], seen[1.0]
    moved = 0
    for bank, wallet in zip(by_bank, by_wallet, strict=True):
        assert (bank.person_phone, bank.body.get("amount")) == (
            wallet.person_phone,
            wallet.body.get("amount"),
        )
        if bank.body["type"] != wallet.body["type"]:
            assert (bank.body["type"], wallet.body["type"]) == ("bank.transfer", "payment.payment")
            assert bank.body["payee_account"] == wallet.body["payee_account"]
            moved += 1
    assert moved > 50
