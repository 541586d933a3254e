"""Offline generator: weeks of simulated time in seconds, with no HTTP and no Kafka. Normal traffic (the
same generator as the live simulator, with its daily rhythm) and the training typologies, merged in the
order institutions would report them, with ground truth per scam episode and per money-out event."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from services.simulator import rhythm
from services.simulator.model import IdSource, SimEvent
from services.simulator.normal import NormalTraffic
from services.simulator.population import Population, build_population
from services.simulator.scenarios import ScenarioFactory
from services.simulator.typologies import RANGES, TRAINING_TYPOLOGIES

EVENTS_PER_PERSON_DAY = 8.0  # at activity 1; the population's mean activity is about 3.8


@dataclass(frozen=True)
class OfflineConfig:
    population: int = 2000
    days: float = 21.0
    scams_per_day: float = 40.0
    seed: int = 7
    start: datetime = datetime.fromisoformat("2026-03-02T00:00:00+08:00")
    typologies: tuple[str, ...] = TRAINING_TYPOLOGIES
    events_per_person_day: float = EVENTS_PER_PERSON_DAY


@dataclass
class Truth:
    """What the generator knows: each episode, and for each scam money-out its episode and role."""

    episodes: list[dict[str, Any]] = field(default_factory=list)
    role: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # ref → (episode, typology, role)


def generate(config: OfflineConfig, truth: Truth) -> Iterator[tuple[float, SimEvent]]:
    """(report time, event) in report order. `truth` is filled as scenarios are made."""
    population = build_population(config.population, seed=config.seed)
    ids = IdSource(f"off{config.seed}")
    normal = NormalTraffic(population, ids, seed=config.seed)
    factory = ScenarioFactory(population, ids, seed=config.seed, time_scale=1.0)
    heap: list[tuple[float, int, SimEvent]] = []
    seq = 0
    for scenario in _scenarios(config, factory):
        t0 = scenario.started_at.timestamp()
        for step in scenario.steps:
            seq += 1
            heap.append((t0 + step.delay_s, seq, step.event))
        record = {**scenario.truth, "typology": scenario.typology}
        truth.episodes.append(record)
        for ref in record["victim_payment_ids"]:
            truth.role[ref] = (scenario.scenario_id, scenario.typology, "victim")
        for ref in record["mule_transfer_ids"]:
            truth.role[ref] = (scenario.scenario_id, scenario.typology, "mule")
    heapq.heapify(heap)
    for at, event in _normal(config, population, normal):
        while heap and heap[0][0] <= at:
            t, _, scam = heapq.heappop(heap)
            yield t, scam
        yield at, event
    end = config.start.timestamp() + config.days * 86_400
    while heap and heap[0][0] <= end:
        t, _, scam = heapq.heappop(heap)
        yield t, scam


def _normal(
    config: OfflineConfig, population: Population, normal: NormalTraffic
) -> Iterator[tuple[float, SimEvent]]:
    """Normal events minute by minute: a Poisson count at the rhythm's rate, spread over the minute."""
    rng = np.random.default_rng(config.seed)
    per_s = config.events_per_person_day * sum(p.activity for p in population.people) / 86_400
    t0 = config.start.timestamp()
    for minute in range(int(config.days * 1440)):
        start = t0 + minute * 60
        when = config.start + timedelta(minutes=minute)
        count = int(rng.poisson(per_s * 60 * rhythm.factor(when)))
        for offset in np.sort(rng.uniform(0, 60, count)):
            at = start + float(offset)
            yield at, normal.next(config.start + timedelta(seconds=at - t0))


def _scenarios(config: OfflineConfig, factory: ScenarioFactory) -> Iterator[Any]:
    rng = random.Random(f"offline-scams:{config.seed}")
    t = 0.0
    horizon = config.days * 86_400
    while True:
        t += rng.expovariate(config.scams_per_day / 86_400)
        if t >= horizon:
            return
        # Scams follow the daily rhythm too: a scam rarely starts at 4 a.m.
        when = config.start + timedelta(seconds=t)
        if rng.random() > rhythm.factor(when) / 2.0:
            continue
        yield factory.make(when, rng.choice(config.typologies))


def parameter_ranges() -> dict[str, dict[str, tuple[float, float]]]:
    return RANGES
