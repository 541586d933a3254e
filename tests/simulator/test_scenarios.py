"""Fraud scenarios respect their parameter ranges and label exactly the events they emit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.simulator import scenarios as sc
from services.simulator.model import IdSource
from services.simulator.population import build_population
from services.simulator.typologies import TRAINING_TYPOLOGIES
from streams.schemas.events import Call, Transfer, event_adapter

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SCALE = 10.0


def factory(seed: int = 1) -> sc.ScenarioFactory:
    return sc.ScenarioFactory(build_population(300, seed=seed), IdSource("t"), seed=seed, time_scale=SCALE)


def check_common(scenario: sc.Scenario) -> None:
    refs = [s.event.ref for s in scenario.steps]
    assert scenario.truth["event_ids"] == refs
    assert set(scenario.truth["triggering_event_ids"]) <= set(refs)
    assert all(s.event.scenario_id == scenario.scenario_id for s in scenario.steps)
    assert [s.delay_s for s in scenario.steps] == sorted(s.delay_s for s in scenario.steps)
    for step in scenario.steps:
        event = event_adapter.validate_python(step.event.body)
        assert event.person_phone == step.event.person_phone
        if event.type != "telecom.call":
            # Non-call events are dated when they are emitted; calls at their start, emitted at their end.
            assert event.occurred_at == START + timedelta(seconds=step.delay_s)


@pytest.mark.parametrize("seed", range(1, 40))
def test_impersonation(seed: int) -> None:
    f = factory(seed)
    scenario = f.make(START, "call_then_transfer")
    check_common(scenario)
    call = Call.model_validate(scenario.steps[0].event.body)
    victim = f.population.by_phone[call.callee]
    assert call.caller not in victim.contacts and call.caller not in f.population.by_phone
    assert 8 * 60 <= call.duration_s <= 60 * 60
    assert call.occurred_at == START - timedelta(seconds=call.duration_s)
    transfers = [
        (s.delay_s, Transfer.model_validate(s.event.body))
        for s in scenario.steps
        if s.event.body["type"] == "bank.transfer"
    ]
    assert 1 <= len(transfers) <= 3
    first = transfers[0][0]
    assert 10 / SCALE <= first <= 180 / SCALE
    mule = scenario.truth["mule"]["account"]
    assert mule not in {p.account for p in victim.payees}
    total = sum((t.amount for _, t in transfers), Decimal(0))
    assert Decimal(5000) <= total <= Decimal(200000)
    assert str(total) == scenario.truth["amount_total"]
    for _, t in transfers:
        assert t.payer_phone == victim.phone and t.payee_account == mule
    assert scenario.truth["triggering_event_ids"] == [
        s.event.ref for s in scenario.steps if s.event.body["type"] == "bank.transfer"
    ]


@pytest.mark.parametrize("seed", range(1, 40))
def test_mule_fan_in(seed: int) -> None:
    f = factory(seed)
    scenario = f.make(START, "mule_fan_in")
    check_common(scenario)
    mule = scenario.truth["mule"]
    transfers = [
        Transfer.model_validate(s.event.body)
        for s in scenario.steps
        if s.event.body["type"] == "bank.transfer"
    ]
    inbound = [t for t in transfers if t.payee_account == mule["account"]]
    outbound = [t for t in transfers if t.payer_account == mule["account"]]
    assert len(inbound) + len(outbound) == len(transfers)
    assert 6 <= len(inbound) <= 20
    assert len({t.payer_phone for t in inbound}) == len(inbound)
    assert all(t.payee_institution == mule["institution"] for t in inbound)
    assert 1 <= len(outbound) <= 3
    assert all(t.payer_phone == mule["phone"] for t in outbound)
    inflow = sum((t.amount for t in inbound), Decimal(0))
    outflow = sum((t.amount for t in outbound), Decimal(0))
    assert inflow * Decimal("0.79") <= outflow <= inflow * Decimal("0.96")
    assert str(inflow) == scenario.truth["amount_in"]
    # Compressed: the whole fan-in and pay-out plays out within about a minute at scale 10.
    assert scenario.length_s <= (300 + 120 + 3 * 30) / SCALE


def test_deterministic_by_seed() -> None:
    a, b = factory(3), factory(3)
    assert [a.make(START).truth for _ in range(10)] == [b.make(START).truth for _ in range(10)]


def test_split_sums_exactly() -> None:
    import random

    rng = random.Random(1)
    for parts in (1, 2, 3):
        amounts = sc.split(Decimal("12345.67"), parts, rng)
        assert sum(amounts) == Decimal("12345.67") and all(a > 0 for a in amounts)


def test_factory_draws_only_the_typologies_it_is_given():
    pop = build_population(300)
    factory = sc.ScenarioFactory(pop, IdSource("k"), kinds=TRAINING_TYPOLOGIES)
    drawn = {factory.make(datetime(2026, 3, 2, 12, tzinfo=UTC)).typology for _ in range(60)}
    assert drawn <= set(TRAINING_TYPOLOGIES) and len(drawn) > 3
    with pytest.raises(ValueError, match="unknown typologies"):
        sc.ScenarioFactory(pop, IdSource("k"), kinds=("no_such_scam",))
