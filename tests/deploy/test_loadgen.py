"""Matching alerts to the scams that caused them, and the percentiles the benchmark reports."""

from __future__ import annotations

from datetime import UTC, datetime

from deploy.bench.alert_watch import SeenAlert
from deploy.bench.loadgen import Ledger
from deploy.percentile import percentile
from services.simulator.model import IdSource
from services.simulator.population import build_population
from services.simulator.scenarios import ScenarioFactory
from services.simulator.sinks import SendResult


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None


def test_latency_runs_from_the_post_of_the_last_trigger_to_the_first_alert() -> None:
    factory = ScenarioFactory(build_population(100), IdSource("t"), time_scale=10)
    scenario = factory.make(datetime(2025, 1, 1, tzinfo=UTC), "call_then_transfer")
    ledger = Ledger()
    ledger.on_scenario(scenario)
    for i, step in enumerate(scenario.steps):
        ledger.on_sent(step.event.institution, [step.event], SendResult(1, 0, None, 100.0 + i, 0.01, 1))
    call, last = scenario.steps[0].event.ref, scenario.steps[-1].event.ref
    alerts = [
        SeenAlert(200.0, "call_then_transfer", (call, last)),
        SeenAlert(150.0, "call_then_transfer", (call, last)),
        SeenAlert(151.0, "mule_fan_in", ("bank-a:unrelated",)),
    ]
    latency, other = ledger.match(alerts)
    assert latency == {scenario.scenario_id: 150.0 - (100.0 + len(scenario.steps) - 1)}
    assert other == 1
