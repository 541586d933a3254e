"""Offline generator: days of simulated time in seconds, with no HTTP and no Kafka. Normal traffic (the
same generator as the live simulator, with its daily and weekly rhythm), the scam typologies and the hard
negatives, merged in the order institutions would report them, with ground truth per episode and per
money-out. Events of the institutions that report nothing (`World.silent`) are left out, as Stopline
would never receive them; the truth still names them."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from services.simulator import rhythm
from services.simulator.benign import KINDS
from services.simulator.model import IdSource, SimEvent
from services.simulator.normal import NormalTraffic
from services.simulator.population import build_population
from services.simulator.scenarios import Scenario, ScenarioFactory
from services.simulator.typologies import RANGES, TRAINING_TYPOLOGIES
from services.simulator.world import World


@dataclass(frozen=True)
class OfflineConfig:
    population: int = 2000
    days: float = 21.0
    scams_per_day: float = 40.0
    seed: int = 7
    start: datetime = datetime.fromisoformat("2026-03-02T00:00:00+08:00")
    typologies: tuple[str, ...] = TRAINING_TYPOLOGIES
    hard_negatives: tuple[str, ...] = KINDS
    silent_share: float | None = None  # None: the world's own draw
    run_tag: str = ""  # event id prefix; default from the seed

    def world(self) -> World:
        return World.draw(self.seed, silent_share=self.silent_share)


@dataclass
class Truth:
    """What the generator knows: each scam episode, each hard-negative episode, and for each of their
    money-outs its episode, typology (or kind) and role (victim, mule, benign)."""

    episodes: list[dict[str, Any]] = field(default_factory=list)
    benign: list[dict[str, Any]] = field(default_factory=list)
    role: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # ref → (episode, typology, role)
    world: World | None = None

    def record(self, scenario: Scenario, reports: Any) -> None:
        record = dict(scenario.truth)
        reported = {s.event.ref for s in scenario.steps if reports(s.event.institution)}
        # When Stopline receives the episode's first money-out (victim payment, or the hard negative's
        # money): an episode is measured in the days it can first be alerted in.
        money = set(record["money_ids" if record.get("benign") else "victim_payment_ids"]) & reported
        t0 = scenario.started_at.timestamp()
        record["first_money_at"] = min(
            (t0 + s.delay_s for s in scenario.steps if s.event.ref in money), default=None
        )
        if record.get("benign"):
            record["reported_ids"] = sorted(set(record["event_ids"]) & reported)
            self.benign.append(record)
            for ref in record["money_ids"]:
                self.role[ref] = (scenario.scenario_id, scenario.typology, "benign")
            return
        record["typology"] = scenario.typology
        # Observable: Stopline receives at least one of the victims' payments (their bank or payment
        # provider reports); an episode paid only through silent institutions cannot be alerted at all.
        record["observable"] = bool(money)
        self.episodes.append(record)
        for ref in record["victim_payment_ids"]:
            self.role[ref] = (scenario.scenario_id, scenario.typology, "victim")
        for ref in record["mule_transfer_ids"]:
            self.role[ref] = (scenario.scenario_id, scenario.typology, "mule")


def generate(config: OfflineConfig, truth: Truth) -> Iterator[tuple[float, SimEvent]]:
    """(report time, event) in report order, reported institutions' only. `truth` is filled first."""
    world = truth.world = config.world()
    population = build_population(config.population, seed=config.seed, pace_sigma=world.pace_sigma)
    ids = IdSource(config.run_tag or f"off{config.seed}")
    normal = NormalTraffic(population, ids, seed=config.seed, world=world)
    factory = ScenarioFactory(
        population,
        ids,
        seed=config.seed,
        time_scale=1.0,
        wallet_share=world.wallet_share,
        fresh_payee_share=world.fresh_payee_share,
    )
    heap: list[tuple[float, int, SimEvent]] = []
    seq = 0
    for scenario in _episodes(config, world, factory):
        truth.record(scenario, world.reports)
        t0 = scenario.started_at.timestamp()
        for step in scenario.steps:
            if world.reports(step.event.institution):
                seq += 1
                heap.append((t0 + step.delay_s, seq, step.event))
    heapq.heapify(heap)
    for at, event in _normal(config, world, normal):
        while heap and heap[0][0] <= at:
            t, _, scam = heapq.heappop(heap)
            yield t, scam
        if world.reports(event.institution):
            yield at, event
    end = config.start.timestamp() + config.days * 86_400
    while heap and heap[0][0] <= end:
        t, _, scam = heapq.heappop(heap)
        yield t, scam


def _normal(config: OfflineConfig, world: World, normal: NormalTraffic) -> Iterator[tuple[float, SimEvent]]:
    """Normal events minute by minute: a Poisson count at the rhythm's rate, spread over the minute."""
    rng = np.random.default_rng(config.seed)
    per_s = world.events_per_person_day * config.population / 86_400
    t0 = config.start.timestamp()
    for minute in range(int(config.days * 1440)):
        start = t0 + minute * 60
        when = config.start + timedelta(minutes=minute)
        count = int(rng.poisson(per_s * 60 * rhythm.factor(when, world.weekend_factor)))
        for offset in np.sort(rng.uniform(0, 60, count)):
            at = start + float(offset)
            yield at, normal.next(when + timedelta(seconds=float(offset)))


def _episodes(config: OfflineConfig, world: World, factory: ScenarioFactory) -> Iterator[Scenario]:
    """Scams at `scams_per_day` and each hard negative at the world's rate, as Poisson streams that
    follow the rhythm (a scam rarely starts at 4 a.m.), in time order of their start."""
    rng = random.Random(f"offline-episodes:{config.seed}")
    streams = [(config.scams_per_day, config.typologies)] if config.typologies else []
    for kind in config.hard_negatives:
        streams.append((world.benign_rates[kind] * config.population / 1000, (kind,)))
    starts: list[tuple[float, str]] = []
    horizon = config.days * 86_400
    peak = max(
        rhythm.factor(config.start + timedelta(minutes=m), world.weekend_factor)
        for m in range(0, 7 * 1440, 10)
    )
    for per_day, kinds in streams:
        if per_day <= 0:
            continue
        t = 0.0
        while True:
            t += rng.expovariate(per_day / 86_400 * peak)
            if t >= horizon:
                break
            when = config.start + timedelta(seconds=t)
            if rng.random() < rhythm.factor(when, world.weekend_factor) / peak:  # thinning: the rhythm
                starts.append((t, rng.choice(kinds)))
    for t, kind in sorted(starts):
        yield factory.make(config.start + timedelta(seconds=t), kind)


def parameter_ranges() -> dict[str, dict[str, tuple[float, float]]]:
    return RANGES


def expected_events(config: OfflineConfig) -> int:
    """About how many normal events a configuration makes (for progress messages and sizing)."""
    return math.ceil(config.world().events_per_person_day * config.population * config.days)
