"""`python -m services.simulator`: run the simulated institutions against the ingest API or Kafka."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import start_http_server

from services.kit.logging import configure_logging, log_fields
from services.kit.settings import CommonSettings
from services.simulator.benign import KINDS
from services.simulator.model import INSTITUTIONS, IdSource
from services.simulator.normal import NormalTraffic
from services.simulator.population import build_population
from services.simulator.provision import DEFAULT_KEYS, load_keys, provision
from services.simulator.runner import Runner, Stats, TrafficConfig, TruthWriter
from services.simulator.scenarios import TYPOLOGIES, ScenarioFactory
from services.simulator.sinks import HttpSink, KafkaSink, MissingKeys, Sink
from services.simulator.typologies import TRAINING_TYPOLOGIES
from services.simulator.warmup import population_rate, warm_up
from services.simulator.world import World
from streams import acls
from streams.connection import connection

log = logging.getLogger("services.simulator")

DEFAULT_TRUTH = Path(".local/simulator/truth.jsonl")
DEFAULT_INGEST_URL = "http://127.0.0.1:8001"
# Scenario time runs 10x faster than the clock: the longest scenario (a fan-in over five minutes and its
# pay-out) plays out in about a minute; the call before a transfer keeps its real, reported duration.
DEFAULT_TIME_SCALE = 10.0
TYPOLOGY_SETS = {
    "demo": TYPOLOGIES,
    "training": TRAINING_TYPOLOGIES,
    "all": TYPOLOGIES + TRAINING_TYPOLOGIES,
    "hard": TRAINING_TYPOLOGIES + KINDS,  # the typologies and the hard negatives, drawn alike
}
WARMUP_BATCH = 1000  # history is not latency-bound: the largest batch the ingest API takes


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared with the benchmark."""
    parser.add_argument("--population", type=int, default=5000, help="people in the simulated population")
    parser.add_argument("--seed", type=int, default=1, help="seed of the population and of the traffic")
    parser.add_argument(
        "--time-scale", type=float, default=DEFAULT_TIME_SCALE, help="scenario time compression"
    )
    parser.add_argument("--batch", type=int, default=100, help="events per batch (at most 1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="batches in flight at once")
    parser.add_argument("--linger", type=float, default=0.25, help="longest wait (s) to fill a batch")
    parser.add_argument("--ingest-url", default=DEFAULT_INGEST_URL)
    parser.add_argument(
        "--provision", action="store_true", help="create institutions and API keys if missing"
    )
    parser.add_argument("--keys", type=Path, default=DEFAULT_KEYS, help="file of the institutions' API keys")
    parser.add_argument(
        "--run-tag",
        help="event id prefix; with --seed, fixes the traffic (default: from the clock, fresh per run)",
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.simulator", description=__doc__)
    parser.add_argument("--sink", choices=("http", "kafka"), default="http")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="average events/s of normal traffic (default: the population's own pace, the events a person "
        "makes a day in the training data; a faster rate makes everyone busier than the model knows)",
    )
    parser.add_argument("--scams-per-minute", type=float, default=2.0)
    parser.add_argument(
        "--typologies",
        choices=tuple(TYPOLOGY_SETS),
        default="all",
        help="scams to inject: the two demo scenarios, the model's training typologies, or both",
    )
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 runs until stopped")
    parser.add_argument("--flat", action="store_true", help="no daily rhythm: a constant rate")
    parser.add_argument(
        "--silent-share",
        type=float,
        default=None,
        help="share of institutions that report nothing (default: the run's world draws it, 15-35%%)",
    )
    parser.add_argument("--truth", type=Path, default=DEFAULT_TRUTH, help="JSONL file of the ground truth")
    parser.add_argument("--metrics-port", type=int, default=8009, help="Prometheus /metrics port; 0 disables")
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        help="days of ordinary history to send first, dated in the past, so the scorer knows people",
    )
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1000")
    return args


def run_tag(args: argparse.Namespace) -> str:
    # Ids must differ between runs: the ingest API remembers event ids for days and drops repeats.
    return str(args.run_tag or f"s{args.seed}-{int(time.time() * 1000):x}")


async def keys_for(args: argparse.Namespace, common: CommonSettings) -> dict[str, str]:
    if args.provision:
        return await provision(common.database_url, args.keys)
    return load_keys(args.keys)


async def make_sink(args: argparse.Namespace, common: CommonSettings) -> Sink:
    if args.sink == "kafka":
        admin = connection(common, acls.ADMIN)
        if args.provision:  # each institution produces as itself, to its own intake topic
            for ident, kind in INSTITUTIONS.items():
                await acls.provision_institution(admin, ident, kind=kind, prefix=common.topic_prefix)
        return KafkaSink(admin, list(INSTITUTIONS), topic_prefix=common.topic_prefix)
    return HttpSink(args.ingest_url, await keys_for(args, common), connections=args.concurrency)


def summary(stats: Stats) -> dict[str, Any]:
    return {
        "elapsed_s": round(stats.elapsed, 3),
        "events_generated": stats.generated,
        "events_acknowledged": stats.acked,
        "duplicates": stats.duplicates,
        "events_per_s": round(stats.acked / stats.elapsed, 1),
        "batches": stats.batches,
        "errors": dict(stats.errors),
        "scams_injected": dict(stats.scams),
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    common = CommonSettings()
    tag = run_tag(args)
    world = World.draw(args.seed, silent_share=args.silent_share)
    population = build_population(args.population, seed=args.seed, pace_sigma=world.pace_sigma)
    ids = IdSource(tag)
    rate = population_rate(population, world.events_per_person_day) if args.rate is None else args.rate
    config = TrafficConfig(
        rate=rate,
        duration_s=args.duration,
        scams_per_minute=args.scams_per_minute,
        flat=args.flat,
        batch=args.batch,
        linger_s=args.linger,
        concurrency=args.concurrency,
        seed=args.seed,
    )
    normal = NormalTraffic(population, ids, seed=args.seed, world=world)
    if args.warmup > 0:
        sink = await make_sink(args, common)
        await sink.start()
        try:
            sent = await warm_up(
                sink,
                normal,
                days=args.warmup,
                until=datetime.now(UTC),
                batch=max(args.batch, WARMUP_BATCH),
                concurrency=args.concurrency,
            )
        finally:
            await sink.close()
        log.info("warm-up history sent", extra=log_fields(days=args.warmup, events=sent))
    truth = TruthWriter(args.truth)
    runner = Runner(
        config,
        normal,
        ScenarioFactory(
            population,
            ids,
            seed=args.seed,
            time_scale=args.time_scale,
            kinds=TYPOLOGY_SETS[args.typologies],
            wallet_share=world.wallet_share,
            fresh_payee_share=world.fresh_payee_share,
        ),
        await make_sink(args, common),
        truth=truth,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.stop)
    log.info(
        "simulator started",
        extra=log_fields(
            sink=args.sink,
            rate=round(rate, 2),
            population=args.population,
            events_per_person_day=round(rate * 86_400 / args.population, 1),
            typologies=args.typologies,
            run_tag=tag,
            flat=args.flat,
            silent_institutions=sorted(world.silent),
        ),
    )
    try:
        stats = await runner.run()
    finally:
        truth.close()
    result = summary(stats)
    log.info("simulator stopped", extra=log_fields(**result))
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    common = CommonSettings()
    configure_logging(service="simulator", level=common.log_level, pseudonym_key=common.pseudonym_key)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line a request otherwise
    if args.metrics_port:
        start_http_server(args.metrics_port, addr="127.0.0.1")
    try:
        result = asyncio.run(_main(args))
    except MissingKeys as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from exc
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
