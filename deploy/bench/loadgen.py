"""End-to-end benchmark of the running stack: events through the ingest API at a fixed rate (or as fast as
it takes them), scams injected, and the time from posting a scam's triggering event to its alert on Kafka.

    python -m deploy.bench.loadgen --rate 1000 --duration 60 --batch 100 [--provision] [--mode max]

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from deploy.bench.alert_watch import AlertWatcher, SeenAlert
from deploy.percentile import ms, percentile
from services.kit.collector import defer_full_collections, freeze_startup
from services.kit.logging import configure_logging
from services.kit.settings import CommonSettings
from services.simulator.cli import add_common_arguments, make_sink, run_tag
from services.simulator.model import IdSource, SimEvent
from services.simulator.normal import NormalTraffic
from services.simulator.population import build_population
from services.simulator.runner import Runner, Stats, TrafficConfig
from services.simulator.scenarios import Scenario, ScenarioFactory
from services.simulator.sinks import MissingKeys, SendResult
from streams import acls, topics
from streams.connection import connection

log = logging.getLogger("deploy.bench.loadgen")


@dataclass
class Ledger:
    """The scams injected and when the POST carrying each of their events was sent."""

    scenarios: dict[str, Scenario] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # event ref -> scenario id
    sent_at: dict[str, float] = field(default_factory=dict)  # event ref -> monotonic

    def on_scenario(self, scenario: Scenario) -> None:
        self.scenarios[scenario.scenario_id] = scenario
        for ref in scenario.event_refs:
            self.owner[ref] = scenario.scenario_id

    def on_sent(self, _: str, batch: list[SimEvent], result: SendResult) -> None:
        if result.error is not None:
            return
        for event in batch:
            # Every event, not only the scams': any alert's latency is measured, whatever raised it.
            self.sent_at[event.ref] = result.sent_at

    def match(self, alerts: list[SeenAlert]) -> tuple[dict[str, float], int]:
        """Latency of the first alert of each scenario, and how many alerts matched no scenario.

        An alert's latency is measured from the POST of the last-sent of its triggering events: that is
        the event whose arrival let the scorer conclude. It may be the victim's own later payment, not
        one of the scenario's (a scam call, then an ordinary payment made under its influence)."""
        latency: dict[str, float] = {}
        other = 0
        for alert in sorted(alerts, key=lambda a: a.arrived):
            refs = [r for r in alert.triggering_event_ids if r in self.owner]
            if not refs:
                other += 1
                continue
            sid = self.owner[refs[0]]
            sent = [self.sent_at[r] for r in alert.triggering_event_ids if r in self.sent_at]
            if sid not in latency and sent:
                latency[sid] = alert.arrived - max(sent)
        return latency, other

    def any_alert_latency(self, alerts: list[SeenAlert]) -> list[float]:
        """For every alert (scam or false alarm) whose triggers this run posted: the time from the POST
        of its last-sent trigger to the alert. The path is the same whatever the verdict."""
        out = []
        for alert in alerts:
            sent = [self.sent_at[r] for r in alert.triggering_event_ids if r in self.sent_at]
            if sent:
                out.append(alert.arrived - max(sent))
        return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deploy.bench.loadgen", description=__doc__)
    parser.add_argument("--mode", choices=("fixed", "max"), default="fixed")
    parser.add_argument("--rate", type=float, default=1000.0, help="target events/s (fixed mode)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of traffic")
    parser.add_argument("--scams-per-minute", type=float, default=12.0)
    parser.add_argument("--alert-wait", type=float, default=10.0, help="seconds to wait for late alerts")
    parser.add_argument(
        "--sink", choices=("http", "kafka"), default="http", help="kafka skips the ingest API"
    )
    parser.add_argument("--truth", type=Path, help="write each scam's ground truth and outcome here (JSONL)")
    add_common_arguments(parser)
    parser.set_defaults(concurrency=16)
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be between 1 and 1000")
    if args.duration <= 0:
        parser.error("--duration must be positive")
    return args


def write_truth(path: Path, ledger: Ledger, latency: dict[str, float]) -> None:
    """Each scam with whether and how fast it was alerted, to study the misses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for sid, scenario in ledger.scenarios.items():
            outcome = {"alerted": sid in latency, "event_to_alert_ms": ms(latency.get(sid))}
            out.write(orjson.dumps({**scenario.truth, **outcome}) + b"\n")


def report(args: argparse.Namespace, stats: Stats, ledger: Ledger, watcher: AlertWatcher) -> dict[str, Any]:
    latency, other = ledger.match(watcher.alerts)
    if args.truth is not None:
        write_truth(args.truth, ledger, latency)
    values = list(latency.values())
    injected = Counter(s.typology for s in ledger.scenarios.values())
    alerted = Counter(ledger.scenarios[sid].typology for sid in latency)
    return {
        "mode": args.mode,
        "sink": args.sink,
        "target_rate": None if args.mode == "max" else args.rate,
        "duration_s": args.duration,
        "elapsed_s": round(stats.elapsed, 3),
        "batch": args.batch,
        "concurrency": args.concurrency,
        "events_acknowledged": stats.acked,
        "achieved_events_per_s": round(stats.acked / stats.elapsed, 1),
        "errors": dict(stats.errors),
        "failed_events": stats.failed_events,
        "retried_batches": stats.retried_batches,
        "batch_post_latency_ms": {
            "p50": ms(percentile(stats.batch_latencies, 50)),
            "p99": ms(percentile(stats.batch_latencies, 99)),
        },
        "event_to_alert_ms": {
            "p50": ms(percentile(values, 50)),
            "p99": ms(percentile(values, 99)),
            "max": ms(max(values) if values else None),
        },
        "event_to_any_alert_ms": {
            "alerts": len(every := ledger.any_alert_latency(watcher.alerts)),
            "p50": ms(percentile(every, 50)),
            "p99": ms(percentile(every, 99)),
            "max": ms(max(every) if every else None),
        },
        "scams": {
            "injected": sum(injected.values()),
            "alerted": len(latency),
            "missed": sum(injected.values()) - len(latency),
            "by_typology": {t: {"injected": n, "alerted": alerted[t]} for t, n in injected.items()},
        },
        "alerts_other": other,
        "alerts_invalid": watcher.invalid,
    }


async def _wait_for_alerts(ledger: Ledger, watcher: AlertWatcher, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        latency, _ = ledger.match(watcher.alerts)
        if len(latency) == len(ledger.scenarios):
            return
        await asyncio.sleep(0.1)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    common = CommonSettings()
    population = build_population(args.population, seed=args.seed)
    ids = IdSource(run_tag(args))
    config = TrafficConfig(
        rate=args.rate,
        duration_s=args.duration,
        scams_per_minute=args.scams_per_minute,
        flat=True,
        max_mode=args.mode == "max",
        batch=args.batch,
        linger_s=args.linger,
        concurrency=args.concurrency,
        finish_scenarios=True,
        seed=args.seed,
    )
    ledger = Ledger()
    watcher = AlertWatcher(
        connection(common, acls.ADMIN),
        topics.name(topics.ALERTS, common.topic_prefix),
        partitions=topics.ALERTS.partitions,
    )
    await watcher.start()
    normal = NormalTraffic(population, ids, seed=args.seed)
    world = normal.world
    try:
        runner = Runner(
            config,
            normal,
            ScenarioFactory(
                population,
                ids,
                seed=args.seed,
                time_scale=args.time_scale,
                wallet_share=world.wallet_share,
                fresh_payee_share=world.fresh_payee_share,
            ),
            await make_sink(args, common),
            on_sent=ledger.on_sent,
            on_scenario=ledger.on_scenario,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runner.stop)
        # The measuring process must not pause itself: a full collection of its growing ledger holds it
        # for tens of milliseconds, and every event in flight would then look that much slower.
        freeze_startup()
        defer_full_collections()
        stats = await runner.run()
        await _wait_for_alerts(ledger, watcher, args.alert_wait)
    finally:
        await watcher.stop()
    return report(args, stats, ledger, watcher)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    common = CommonSettings()
    # Logs go to stderr and only warnings, so stdout holds the one JSON result.
    configure_logging(service="simulator-bench", level="WARNING", pseudonym_key=common.pseudonym_key)
    try:
        result = asyncio.run(_main(args))
    except MissingKeys as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from exc
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
