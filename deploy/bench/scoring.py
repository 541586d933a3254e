"""`python -m deploy.bench.scoring`: scoring throughput and per-event latency on one core, through the
live feature code (both stages) and the active model, micro-batch versus one event at a time. Events come
from the offline simulator, parsed beforehand (JSON parsing is reported on its own). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from models.artifact import active_version, load
from models.features.engine import WalletFlow, apply_person_event
from models.training.dataset import Replay
from services.simulator.offline import OfflineConfig, Truth, generate
from streams.schemas.events import envelope_adapter, event_adapter

HORIZON_S = 7 * 86_400.0


def _events(days: float, population: int) -> list[tuple[str, str, Any]]:
    out = []
    for _, sim in generate(OfflineConfig(population=population, days=days, seed=11), Truth()):
        out.append((sim.institution, sim.ref, event_adapter.validate_python(sim.body)))
    return out


def _run(events: list[tuple[str, str, Any]], model: Any, batch: int) -> tuple[float, int, list[float]]:
    """Seconds for all events, money-outs scored, and per-event seconds when batch == 1."""
    replay = Replay()
    rows: list[list[float]] = []
    scored = 0
    latencies: list[float] = []
    began = time.perf_counter()
    for i, (institution, ref, event) in enumerate(events):
        t0 = time.perf_counter()
        for outcome in apply_person_event(replay.people, institution, event, ref, HORIZON_S):
            if isinstance(outcome, WalletFlow):
                replay.wallet(outcome)
            else:
                rows.append(outcome.features + replay.movement(outcome))
        if batch == 1:
            if rows:
                model.score(np.array(rows))
                scored += len(rows)
                rows.clear()
            latencies.append(time.perf_counter() - t0)
        elif (i + 1) % batch == 0 and rows:
            model.score(np.array(rows))  # one call per consumer batch, as the live scorer does
            scored += len(rows)
            rows.clear()
    if rows:
        model.score(np.array(rows))
        scored += len(rows)
    return time.perf_counter() - began, scored, latencies


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m deploy.bench.scoring", description=__doc__)
    p.add_argument("--days", type=float, default=0.5, help="simulated days of traffic to score")
    p.add_argument("--population", type=int, default=2000)
    p.add_argument("--batch", type=int, default=1000, help="events per micro-batch")
    p.add_argument("--single-events", type=int, default=20_000, help="events scored one at a time")
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    artifact = load(active_version())
    events = _events(args.days, args.population)
    sample = [
        json.dumps({"institution": i, "event": e.model_dump(mode="json")}).encode()
        for i, _, e in events[:20_000]
    ]
    t = time.perf_counter()
    for raw in sample:
        envelope_adapter.validate_json(raw)
    parse_us = (time.perf_counter() - t) / len(sample) * 1e6
    with threadpool_limits(1):
        seconds, scored, _ = _run(events, artifact, args.batch)
        single_events = events[: args.single_events]
        s_seconds, s_scored, latencies = _run(single_events, artifact, 1)
    money = [
        lat
        for lat, (_, _, e) in zip(latencies, single_events, strict=True)
        if e.type in ("bank.transfer", "payment.payment")
    ]
    return {
        "model": artifact.version,
        "cores": 1,
        "events": len(events),
        "money_outs_scored": scored,
        "micro_batch": {
            "events_per_batch": args.batch,
            "events_per_s": round(len(events) / seconds),
            "money_outs_per_s": round(scored / seconds),
        },
        "single_event": {
            "events": len(single_events),
            "events_per_s": round(len(single_events) / s_seconds),
            "money_outs_scored": s_scored,
            "money_out_latency_us_p50": round(float(np.percentile(money, 50)) * 1e6, 1),
            "money_out_latency_us_p99": round(float(np.percentile(money, 99)) * 1e6, 1),
            "any_event_latency_us_p99": round(float(np.percentile(latencies, 99)) * 1e6, 1),
        },
        "json_parse_us_per_event": round(parse_us, 1),
    }


def cli() -> None:
    sys.stdout.write(json.dumps(main()) + "\n")


if __name__ == "__main__":
    cli()
