"""Each run draws its own world from wide ranges; a share of institutions reports nothing, and the offline
generator leaves their events out while the truth still knows them; hard negatives come with truth."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from services.simulator import benign
from services.simulator.model import ALWAYS_REPORTING, INSTITUTIONS, IdSource
from services.simulator.normal import WALLET_LIMIT
from services.simulator.offline import OfflineConfig, Truth, generate
from services.simulator.population import WALLET_SHARE, build_population
from services.simulator.scenarios import ScenarioFactory
from services.simulator.world import FRESH_PAYEE_SHARE_RANGE, RANGES, WALLET_SHARE_RANGE, World
from streams.schemas.events import event_adapter

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_worlds_are_drawn_from_their_ranges_by_seed() -> None:
    worlds = [World.draw(seed) for seed in range(20)]
    assert World.draw(3) == worlds[3]
    for name, (low, high) in RANGES.items():
        values = [getattr(w, name) for w in worlds]
        assert all(low <= v <= high for v in values) and len(set(values)) == len(values)
    for w in worlds:
        assert not w.silent & set(ALWAYS_REPORTING)
        assert len(w.silent) == round(w.silent_share * len(INSTITUTIONS))


def test_the_silent_share_can_be_set() -> None:
    assert World.draw(1, silent_share=0.0).silent == frozenset()
    assert len(World.draw(1, silent_share=0.3).silent) == 4


@pytest.mark.parametrize("kind", benign.KINDS)
@pytest.mark.parametrize("seed", range(1, 4))
def test_hard_negatives_are_well_formed_with_truth(kind: str, seed: int) -> None:
    factory = ScenarioFactory(build_population(300, seed=seed), IdSource("t"), seed=seed, time_scale=1.0)
    scenario = factory.make(START, kind)
    truth = scenario.truth
    assert truth["benign"] and truth["kind"] == kind
    refs = {s.event.ref for s in scenario.steps}
    assert truth["money_ids"] and set(truth["money_ids"]) <= refs
    for step in scenario.steps:
        event = event_adapter.validate_python(step.event.body)
        assert event.person_phone == step.event.person_phone
    money = [s.event for s in scenario.steps if s.event.ref in truth["money_ids"]]
    assert all(e.body["type"] in ("bank.transfer", "payment.payment") for e in money)
    if kind.endswith("fan_in") or kind in ("payroll", "group_purchase"):
        (account,) = truth["accounts"]
        payers = {e.person_phone for e in money if e.body["payee_account"] == account}
        assert len(payers) >= (2 if kind == "payroll" else 3)  # many pay in: what makes it look like a mule


def test_offline_traffic_leaves_the_silent_institutions_out_at_the_worlds_pace() -> None:
    config = OfflineConfig(population=400, days=2.0, scams_per_day=30, seed=5, silent_share=0.3)
    truth = Truth()
    events = list(generate(config, truth))
    world = truth.world
    assert world is not None and len(world.silent) == 4
    assert not {e.institution for _, e in events} & world.silent
    # The pace: 20-30 a person-day (fewer reach Stopline: the silent institutions' are left out).
    sent = Counter(e.institution for _, e in events)
    assert (
        0.5 * world.events_per_person_day < sum(sent.values()) / 400 / 2 < 1.2 * world.events_per_person_day
    )
    assert {e["typology"] for e in truth.episodes} and truth.benign
    emitted = {e.ref for _, e in events}
    for episode in truth.episodes:
        # Observable: one of the victims' payments comes from an institution that reports.
        reporting = [r for r in episode["victim_payment_ids"] if r.split(":")[0] not in world.silent]
        assert episode["observable"] == bool(reporting)
        assert not (set(episode["victim_payment_ids"]) - set(reporting)) & emitted
    assert any(not e["observable"] for e in truth.episodes)


def test_a_world_pays_a_share_of_person_to_person_money_from_wallets() -> None:
    """Person-to-person wallet payments are ordinary life (and hard negatives use them too), so a payment
    from a wallet to an account that is no merchant does not on its own mark a scam."""
    shares = [World.draw(seed).wallet_share for seed in range(20)]
    assert all(WALLET_SHARE_RANGE[0] <= s <= WALLET_SHARE_RANGE[1] for s in shares)
    config = OfflineConfig(population=400, days=2.0, scams_per_day=30, seed=5, silent_share=0.0)
    truth = Truth()
    events = [e for _, e in generate(config, truth)]
    world = truth.world
    assert world is not None and world.describe()["wallet_share"] == round(world.wallet_share, 3)
    merchants = {m.account for m in build_population(400, seed=5).merchants}
    benign_money = {ref for b in truth.benign for ref in b["money_ids"]}
    scam_money = {ref for e in truth.episodes for ref in (*e["victim_payment_ids"], *e["mule_transfer_ids"])}
    p2p = [
        e
        for e in events
        if e.body["type"] == "payment.payment"
        and e.body["payee_account"] not in merchants
        and e.ref not in scam_money
    ]
    ordinary = [e for e in p2p if e.ref not in benign_money]
    transfers = [
        e
        for e in events
        if e.body["type"] == "bank.transfer" and e.ref not in benign_money and e.ref not in scam_money
    ]
    # The world's share of the wallet holders' ordinary transfers goes through the wallet instead.
    paid = world.wallet_share * WALLET_SHARE
    assert 0.85 * paid < len(ordinary) / (len(ordinary) + len(transfers)) < 1.15 * paid
    assert {e.ref for e in p2p} & benign_money  # hard negatives pay from wallets too


def test_a_wallet_payment_moves_no_other_draw_of_the_seed() -> None:
    """The world's wallet share changes how hard negatives pay, not which people, payees or scams a seed
    draws: the episodes after them are the same."""
    drawn: dict[float, tuple[list[str], list[str], dict[str, Any]]] = {}
    for share in (0.0, 1.0):
        # A population each: a factory's new accounts are marked used in the population's numbers.
        pop = build_population(300, seed=2)
        factory = ScenarioFactory(pop, IdSource("w"), seed=2, time_scale=1.0, wallet_share=share)
        group = factory.make(START, "group_purchase")
        scam = factory.make(START, "impersonation_police")
        kinds = [s.event.body["type"] for s in group.steps if s.event.ref in group.truth["money_ids"]]
        drawn[share] = (kinds, group.truth["people"], scam.truth)
    (by_bank, people, truth), (by_wallet, people_1, truth_1) = drawn[0.0], drawn[1.0]
    assert set(by_bank) == {"bank.transfer"} and "payment.payment" in by_wallet
    assert (people, truth) == (people_1, truth_1)


def test_sums_over_a_wallets_limit_go_through_the_bank() -> None:
    factory = ScenarioFactory(
        build_population(300, seed=3), IdSource("l"), seed=3, time_scale=1.0, wallet_share=1.0
    )
    paid: dict[str, list[float]] = {"bank.transfer": [], "payment.payment": []}
    for _ in range(40):  # large first transfers: 5,000-200,000 CNY
        scenario = factory.make(START, "large_first_transfer")
        for step in scenario.steps:
            if step.event.ref in scenario.truth["money_ids"]:
                paid[step.event.body["type"]].append(float(step.event.body["amount"]))
    assert paid["payment.payment"] and max(paid["payment.payment"]) <= WALLET_LIMIT
    assert max(paid["bank.transfer"]) > WALLET_LIMIT


def test_one_off_payees_are_first_seen_in_the_worlds_share_and_move_no_other_draw() -> None:
    """A car's seller or the hospital a stranger's call was about is often an account nobody here paid
    before, as a scam's collection account is; the share changes which account, not what else a seed draws."""
    shares = [World.draw(seed).fresh_payee_share for seed in range(20)]
    assert all(FRESH_PAYEE_SHARE_RANGE[0] <= s <= FRESH_PAYEE_SHARE_RANGE[1] for s in shares)
    drawn: dict[float, tuple[set[str], list[dict[str, Any]]]] = {}
    for share in (0.0, 1.0):
        pop = build_population(300, seed=4)
        businesses = {b.account for made in pop.businesses.values() for b in made}
        factory = ScenarioFactory(pop, IdSource("f"), seed=4, time_scale=1.0, fresh_payee_share=share)
        sellers: set[str] = set()
        others = []
        for _ in range(30):
            sellers |= set(factory.make(START, "large_first_transfer").truth["accounts"])
            others.append(factory.make(START, "impersonation_police").truth)
        drawn[share] = ({"business" if a in businesses else "first seen" for a in sellers}, others)
    assert drawn[0.0][0] == {"business"} and drawn[1.0][0] == {"first seen"}
    assert drawn[0.0][1] == drawn[1.0][1]  # the scams drawn between them are the same
