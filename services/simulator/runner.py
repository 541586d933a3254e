"""The live loop: normal traffic at a rate (with the daily rhythm), scenarios as a Poisson stream,
per-institution batches handed to a bounded pool of concurrent senders."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import orjson

from services.kit.logging import log_fields
from services.simulator import metrics, rhythm
from services.simulator.model import SimEvent
from services.simulator.normal import NormalTraffic
from services.simulator.scenarios import Scenario, ScenarioFactory
from services.simulator.sinks import SendResult, Sink

log = logging.getLogger(__name__)

TICK_S = 0.01
OnSent = Callable[[str, list[SimEvent], SendResult], None]


@dataclass(frozen=True)
class TrafficConfig:
    rate: float = 200.0  # average events/s of normal traffic; ignored in max mode
    duration_s: float = 0.0  # 0 runs until stopped
    scams_per_minute: float = 2.0
    flat: bool = False
    max_mode: bool = False  # as fast as the sink takes them
    batch: int = 100
    linger_s: float = 0.25  # a partial batch waits at most this long
    concurrency: int = 8  # batches in flight at once
    finish_scenarios: bool = False  # start only scenarios that end before `duration_s` (benchmarks)
    seed: int = 1
    drain_timeout_s: float = 30.0  # at the end, how long batches made may still take (retries included)


@dataclass
class Stats:
    started: float = 0.0
    finished: float = 0.0
    generated: int = 0
    acked: int = 0
    duplicates: int = 0
    batches: int = 0
    retried_batches: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    failed_events: int = 0
    batch_latencies: list[float] = field(default_factory=list)
    scams: Counter[str] = field(default_factory=Counter)

    @property
    def elapsed(self) -> float:
        return max(self.finished - self.started, 1e-9)


class TruthWriter:
    """Ground truth, one JSON object a line, appended as each scenario finishes (or is cut short)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[bytes] = path.open("ab")

    def write(self, record: dict[str, object]) -> None:
        self._out.write(orjson.dumps(record) + b"\n")
        self._out.flush()

    def close(self) -> None:
        self._out.close()


class Runner:
    def __init__(
        self,
        config: TrafficConfig,
        normal: NormalTraffic,
        scenarios: ScenarioFactory,
        sink: Sink,
        *,
        truth: TruthWriter | None = None,
        on_sent: OnSent | None = None,
        on_scenario: Callable[[Scenario], None] | None = None,
    ) -> None:
        self.config = config
        self.normal = normal
        self.scenarios = scenarios
        self.sink = sink
        self.truth = truth
        self.on_sent = on_sent
        self.on_scenario = on_scenario
        self.stats = Stats()
        self.rng = random.Random(f"arrivals:{config.seed}:{normal.ids.run_tag}")
        self._stopping = asyncio.Event()
        self._queue: asyncio.Queue[tuple[str, list[SimEvent]]] = asyncio.Queue(maxsize=config.concurrency * 2)
        self._buffers: dict[str, list[SimEvent]] = defaultdict(list)
        self._opened: dict[str, float] = {}  # institution -> monotonic time its buffer got its first event
        self._pending: list[tuple[float, int, str, SimEvent]] = []  # (due, tie, scenario id, event)
        self._tie = itertools.count()
        self._open: dict[str, tuple[Scenario, list[str]]] = {}
        self._t0 = 0.0
        self._wall0 = datetime.now(UTC)

    def stop(self) -> None:
        """Stop generating; batches already made are still sent."""
        self._stopping.set()

    def wall(self, mono: float) -> datetime:
        # One clock for event times: wall time at start plus monotonic time since, immune to clock steps.
        return self._wall0 + timedelta(seconds=mono - self._t0)

    async def run(self) -> Stats:
        cfg = self.config
        await self.sink.start()
        self._t0, self._wall0 = time.monotonic(), datetime.now(UTC)
        self.stats.started = self._t0
        workers = [asyncio.create_task(self._worker()) for _ in range(cfg.concurrency)]
        try:
            await self._generate()
            await self._drain()
        finally:
            self.stats.finished = time.monotonic()
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self.sink.close()
            self._close_open_scenarios()
        return self.stats

    async def _drain(self) -> None:
        async def flush_and_join() -> None:
            for institution in list(self._buffers):
                await self._flush(institution)
            await self._queue.join()

        try:
            await asyncio.wait_for(flush_and_join(), self.config.drain_timeout_s)
        except TimeoutError:
            # A sink that is down would otherwise hold a stop for minutes of retries.
            log.warning(
                "stopped before every batch was delivered",
                extra=log_fields(batches_left=self._queue.qsize(), grace_s=self.config.drain_timeout_s),
            )

    async def _generate(self) -> None:
        cfg = self.config
        end = self._t0 + cfg.duration_s if cfg.duration_s > 0 else float("inf")
        next_scam = self._t0 + self._gap()
        last, credit = self._t0, 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            while next_scam <= min(now, end):
                self._start_scenario(next_scam, end)
                next_scam += self._gap()
            while self._pending and self._pending[0][0] <= now:
                _, _, sid, event = heapq.heappop(self._pending)
                await self._add(event)
                self._emitted(sid, event)
            if now >= end:
                break  # after the scenario steps due by now: those due at the very end are sent
            if cfg.max_mode:
                for _ in range(cfg.batch):
                    await self._add(self.normal.next(self.wall(now)))
                await self._flush_lingering(now)
                await asyncio.sleep(0)
                continue
            factor = 1.0 if cfg.flat else rhythm.factor(self.wall(now), self.normal.world.weekend_factor)
            # Catch-up after a stall is capped at one second's worth, so a slow sink sees no burst storm.
            credit = min(credit + cfg.rate * factor * (now - last), max(cfg.rate * factor, 1.0))
            last = now
            count = int(credit)
            credit -= count
            at = self.wall(now)
            for _ in range(count):
                await self._add(self.normal.next(at))
            await self._flush_lingering(now)
            await asyncio.sleep(TICK_S)

    def _gap(self) -> float:
        rate = self.config.scams_per_minute / 60
        return self.rng.expovariate(rate) if rate > 0 else float("inf")

    def _start_scenario(self, at: float, end: float) -> None:
        scenario = self.scenarios.make(self.wall(at))
        if self.config.finish_scenarios and at + scenario.length_s > end:
            return  # it would be cut short by the end of the run: its truth would be wrong
        metrics.SCAMS_INJECTED.labels(scenario.typology).inc()
        self.stats.scams[scenario.typology] += 1
        self._open[scenario.scenario_id] = (scenario, [])
        for step in scenario.steps:
            heapq.heappush(
                self._pending, (at + step.delay_s, next(self._tie), scenario.scenario_id, step.event)
            )
        if self.on_scenario is not None:
            self.on_scenario(scenario)
        log.info(
            "scenario started",
            extra=log_fields(
                scenario_id=scenario.scenario_id, typology=scenario.typology, events=len(scenario.steps)
            ),
        )

    def _emitted(self, sid: str, event: SimEvent) -> None:
        scenario, emitted = self._open[sid]
        emitted.append(event.ref)
        if len(emitted) == len(scenario.steps):
            del self._open[sid]
            if self.truth is not None:
                self.truth.write({**scenario.truth, "event_ids": self._reported(emitted), "complete": True})

    def _reported(self, refs: list[str]) -> list[str]:
        """The events that were sent: an institution that reports nothing sent none of its own."""
        world = self.normal.world
        return [ref for ref in refs if world.reports(ref.split(":", 1)[0])]

    def _close_open_scenarios(self) -> None:
        for scenario, emitted in self._open.values():
            if self.truth is not None:
                self.truth.write({**scenario.truth, "event_ids": self._reported(emitted), "complete": False})
        self._open.clear()

    async def _add(self, event: SimEvent) -> None:
        if not self.normal.world.reports(event.institution):
            return  # an institution that reports nothing (the world's coverage)
        self.stats.generated += 1
        buffer = self._buffers[event.institution]
        if not buffer:
            self._opened[event.institution] = time.monotonic()
        buffer.append(event)
        if len(buffer) >= self.config.batch:
            await self._flush(event.institution)

    async def _flush_lingering(self, now: float) -> None:
        for institution, opened in list(self._opened.items()):
            if now - opened >= self.config.linger_s:
                await self._flush(institution)

    async def _flush(self, institution: str) -> None:
        batch = self._buffers.pop(institution, [])
        self._opened.pop(institution, None)
        if batch:
            await self._queue.put((institution, batch))  # blocks when every sender is busy: backpressure

    async def _worker(self) -> None:
        while True:
            institution, batch = await self._queue.get()
            try:
                result = await self.sink.send(institution, batch)
                self._record(institution, batch, result)
            except Exception:  # noqa: BLE001 - a simulator keeps sending; the count and the log show the bug
                log.exception("sending a batch failed", extra=log_fields(institution=institution))
                self.stats.errors["bug"] += 1
                metrics.SEND_ERRORS.labels("bug").inc()
            finally:
                self._queue.task_done()

    def _record(self, institution: str, batch: list[SimEvent], result: SendResult) -> None:
        stats = self.stats
        stats.batches += 1
        stats.batch_latencies.append(result.latency_s)
        if result.attempts > 1:
            stats.retried_batches += 1
        if result.error is not None:
            stats.errors[result.error] += 1
            stats.failed_events += len(batch)
            metrics.SEND_ERRORS.labels(result.error).inc()
        else:
            stats.acked += result.acked
            stats.duplicates += result.duplicates
            metrics.EVENTS_SENT.labels(batch[0].source).inc(result.acked)
        if self.on_sent is not None:
            self.on_sent(institution, batch, result)
