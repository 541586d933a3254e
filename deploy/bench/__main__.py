"""`make bench`: starts the stack and the services on fresh topics and a fresh database, drives them with
the simulator, and prints its progress, then every benchmark's figures as one JSON document (also kept
under .local/bench/, the file to read from a script).
Topics and database are removed at the end: a run neither meets nor leaves the data of another."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from deploy.local import fleet
from deploy.local.common import LOCAL_DIR, REPO_ROOT, say
from deploy.local.processes import PY, stack_running, step, stop_all, wait_healthy
from services.kit.db import scratch_database
from services.kit.settings import CommonSettings

RESULTS = LOCAL_DIR / "bench"


def _run_json(args: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run one benchmark module and return the JSON object it prints last."""
    result = subprocess.run(  # noqa: S603 - our own modules
        [PY, "-m", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        return {"error": f"exit {result.returncode}", "stderr_tail": result.stderr[-2000:]}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return (
        json.loads(lines[-1]) if lines else {"error": "no JSON printed", "stdout_tail": result.stdout[-2000:]}
    )


# 2,000 events/s come from millions of people (about 30 events a day each). The traffic benchmarks draw
# from 200,000: each person still sends ~30 times more than a real one, but not hundreds of events in a
# few minutes, which would make the per-person windows the benchmark's bottleneck. And the scorer's state
# is that of 200,000 people: forks and memory are measured at a realistic size.
# The institutions' keys it provisions live and die with the bench's database: kept apart from the
# simulator's own file, which holds the keys `make run` uses.
LOADGEN = ["deploy.bench.loadgen", "--population", "200000", "--keys", str(RESULTS / "keys.json")]
SETTLE = [*LOADGEN, "--rate", "1000", "--duration", "15", "--batch", "100"]
# (name, module arguments, needs the running ingest/scorer/coordination services)
BENCHMARKS: list[tuple[str, list[str], bool]] = [
    # First: its notifier starts fresh and reads the whole alerts topic, so the thousands of (mostly
    # false) alerts the dense benchmarks below raise would queue ahead of its measured warnings.
    ("notifier_event_to_warning", ["deploy.bench.warning_latency", "--duration", "30"], True),
    (
        "ingest_max_throughput",
        [*LOADGEN, "--mode", "max", "--duration", "30", "--batch", "250", "--provision"],
        True,
    ),
    (
        "event_to_alert_at_1000_per_s",
        [
            *(*LOADGEN, "--rate", "1000", "--duration", "60", "--batch", "100"),
            *("--scams-per-minute", "120", "--provision"),  # enough scams for a meaningful p99
            *("--truth", ".local/bench/scams-at-1000-per-s.jsonl"),  # each scam: alerted? how fast?
        ],
        True,
    ),
    (
        "event_to_alert_at_2000_per_s",
        [
            *(*LOADGEN, "--rate", "2000", "--duration", "60", "--batch", "100"),
            *("--scams-per-minute", "120", "--provision"),
        ],
        True,
    ),
    ("scoring_throughput", ["deploy.bench.scoring"], False),
    (
        "instruction_issue_to_delivered",
        ["deploy.bench.instructions", "--rate", "100", "--duration", "30"],
        False,
    ),
]


def wait_drained(scorer_urls: list[str], timeout: float = 600) -> float:
    """Wait until the scorer has caught up with everything sent so far (every stage's consumer lag is
    zero): a latency benchmark must not measure the backlog the previous one left (the throughput
    benchmark sends far faster than one scorer scores). Returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if all(_lag(url) == 0 for url in scorer_urls):
            return round(time.monotonic() - began, 1)
        time.sleep(1)
    raise SystemExit(f"the scorer did not catch up within {timeout:.0f} s")


def _lag(scorer_url: str) -> float | None:
    """The scorer's consumer lag summed over its partitions; None before it has any (or is unreachable)."""
    try:
        text = httpx.get(f"{scorer_url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    lags = [
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "stopline_consumer_lag"
        for sample in family.samples
    ]
    return sum(lags) if lags else None


def main() -> None:
    os.chdir(REPO_ROOT)
    only = set(sys.argv[1:])
    prefix = f"bench-{int(time.time())}-"
    env = {
        "STOPLINE_TOPIC_PREFIX": prefix,
        "STOPLINE_LOG_LEVEL": "WARNING",
        # The benchmark's scorer starts with no history, so the model's warm-up gate (no model alerts
        # until the state covers a day) is off: it alerts from the first event, false alarms included,
        # which is more work than a warmed-up scorer does, not less.
        "STOPLINE_SCORER_MODEL_WARMUP_HOURS": "0",
    }
    os.environ.update(env)
    stack_was_up = stack_running()
    step(["deploy.local.stack", "up"], "starting Kafka and PostgreSQL", timeout=900)
    # Its own database: the millions of ledger rows and alerts each run writes would otherwise pile up,
    # and PostgreSQL's vacuum of them would run into later runs' measurements.
    server = CommonSettings().database_url
    database = f"stopline_bench_{prefix.split('-')[1]}"
    env["DATABASE_URL"] = asyncio.run(scratch_database(server, database, create=True))
    os.environ.update(env)
    services = fleet.children(1, env=env, services=fleet.SERVICES[:4])  # ingest, both stages, coordination
    scorers = services[1:3]
    results: dict[str, Any] = {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        step(["services.migrate", "upgrade"], "database migrations", timeout=120)
        step(["streams.admin"], "topic creation", timeout=60)
        for child in services:
            child.start()
            wait_healthy(child)
        # 15 s of the same traffic first, not measured: the services' first seconds (consumer groups
        # joining, first model calls, connection pools) are start-up, not the steady state measured.
        say("bench: settling the services with 15 s of traffic …")
        _run_json([*SETTLE, "--provision"], env, timeout=120)
        for name, args, needs_services in BENCHMARKS:
            if needs_services and (not only or name in only):
                waited = wait_drained([s.url or "" for s in scorers])
                say(f"bench: {name} (the scorer caught up in {waited} s) …")
                results[name] = {**_run_json(args, env, timeout=600), "scorer_catch_up_s_before": waited}
        # The self-contained benchmarks start what they measure; idle services would only compete.
        stop_all(list(reversed(services)))
        for name, args, needs_services in BENCHMARKS:
            if not needs_services and (not only or name in only):
                say(f"bench: {name} …")
                results[name] = _run_json(args, env, timeout=600)
    finally:
        stop_all(list(reversed(services)))
        step(["streams.admin", "--delete"], "removing the benchmark topics", timeout=60)
        try:
            asyncio.run(scratch_database(server, database, create=False))
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the run's own error
            say(f"bench: the database {database} was not dropped: {exc!r}")
        if not stack_was_up:
            step(["deploy.local.stack", "down"], "stopping Kafka and PostgreSQL", timeout=120)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = json.dumps(results, indent=2)
    (RESULTS / f"{results['started_at'].replace(':', '')}.json").write_text(out)
    sys.stdout.write(out + "\n")


if __name__ == "__main__":
    main()
