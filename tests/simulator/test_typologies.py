"""Training typologies: well-formed events, truth that names exactly the victims' payments, and an offline
generator that produces them in report order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.simulator.model import IdSource
from services.simulator.offline import OfflineConfig, Truth, generate
from services.simulator.population import build_population
from services.simulator.scenarios import ScenarioFactory
from services.simulator.typologies import TRAINING_TYPOLOGIES
from streams.schemas.events import event_adapter

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("typology", TRAINING_TYPOLOGIES)
@pytest.mark.parametrize("seed", range(1, 6))
def test_typology_events_and_truth(typology: str, seed: int) -> None:
    factory = ScenarioFactory(build_population(300, seed=seed), IdSource("t"), seed=seed, time_scale=1.0)
    scenario = factory.make(START, typology)
    refs = {s.event.ref for s in scenario.steps}
    victims = scenario.truth["victim_payment_ids"]
    assert victims and set(victims) <= refs
    assert not set(victims) & set(scenario.truth["mule_transfer_ids"])
    for step in scenario.steps:
        event = event_adapter.validate_python(step.event.body)
        assert event.person_phone == step.event.person_phone
        if step.event.ref in victims:
            assert event.type in ("bank.transfer", "payment.payment")
            assert event.person_phone in scenario.truth["victim_phones"]
    assert [s.delay_s for s in scenario.steps] == sorted(s.delay_s for s in scenario.steps)


def test_offline_generator_reports_in_time_order_with_truth() -> None:
    truth = Truth()
    events = list(generate(OfflineConfig(population=300, days=1.0, scams_per_day=40, seed=3), truth))
    times = [t for t, _ in events]
    assert times == sorted(times)
    assert truth.episodes and {e["typology"] for e in truth.episodes} <= set(TRAINING_TYPOLOGIES)
    emitted = {e.ref for _, e in events}
    assert any(ref in emitted for ref in truth.role)
