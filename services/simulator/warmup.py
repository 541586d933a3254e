"""Warm-up: a few days of ordinary history (calls from contacts, payments to regular payees, the rest of
normal life), dated in the past and sent as fast as the sink takes them before live traffic starts, so a
freshly started scorer knows people's usual counterparts and does not find everyone new."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np

from services.simulator import rhythm
from services.simulator.model import SimEvent
from services.simulator.normal import NormalTraffic
from services.simulator.population import Population
from services.simulator.sinks import Sink


def population_rate(population: Population, events_per_person_day: float) -> float:
    """Average events/s of this population at its world's pace (as in the training data)."""
    return events_per_person_day * len(population.people) / 86_400


def history(normal: NormalTraffic, *, days: float, until: datetime, seed: int = 1) -> Iterator[SimEvent]:
    """Normal events from `until - days` to `until`, minute by minute with the daily rhythm."""
    rng = np.random.default_rng(seed)
    world = normal.world
    per_s = population_rate(normal.population, world.events_per_person_day)
    start = until - timedelta(days=days)
    for minute in range(int(days * 1440)):
        at = start + timedelta(minutes=minute)
        count = int(rng.poisson(per_s * 60 * rhythm.factor(at, world.weekend_factor)))
        for offset in np.sort(rng.uniform(0, 60, count)):
            event = normal.next(at + timedelta(seconds=float(offset)))
            if world.reports(event.institution):
                yield event


async def warm_up(
    sink: Sink, normal: NormalTraffic, *, days: float, until: datetime, batch: int, concurrency: int
) -> int:
    """Send the history; return how many events were acknowledged. Batches go out in time order per
    institution, `concurrency` at a time."""
    buffers: dict[str, list[SimEvent]] = defaultdict(list)
    in_flight: set[asyncio.Task[int]] = set()
    acked = 0

    async def send(institution: str, events: list[SimEvent]) -> int:
        result = await sink.send(institution, events)
        return result.acked

    for event in history(normal, days=days, until=until):
        buffer = buffers[event.institution]
        buffer.append(event)
        if len(buffer) >= batch:
            in_flight.add(asyncio.create_task(send(event.institution, buffers.pop(event.institution))))
            if len(in_flight) >= concurrency:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                acked += sum(t.result() for t in done)
    for institution, events in buffers.items():
        in_flight.add(asyncio.create_task(send(institution, events)))
    if in_flight:
        acked += sum(await asyncio.gather(*in_flight))
    return acked
