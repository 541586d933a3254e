"""`python -m deploy.live_check`: the model's quality on the live path, end to end, against the offline
figures on the same traffic. It generates evaluation traffic (the offline generator of `make train`:
another world than the model was trained on, every typology and hard negative, partial coverage, a
realistic pace), dated so it ends now; starts ingest, scorer and coordination on a scratch database and
topic prefix; posts the traffic through the ingest API as fast as it takes it; waits until the scorer has
worked through it; and reads the alerts back from Kafka. The same traffic also goes through the scorer's
code offline (`models.training.scorer_replay`). Both are measured alike (`models.training.alert_quality`,
an alert timed at its newest triggering event) and compared.

    flock /tmp/stopline-ports.lock python -m deploy.live_check --population 10000 --days 1 --warm-days 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from deploy.live_check.topics import caught_up, read_alerts
from deploy.local.common import REPO_ROOT as REPO
from models.artifact import ARTIFACTS, active_version
from models.training.alert_quality import measure
from models.training.scorer_replay import OfflineScorer
from services.kit.db import scratch_database
from services.kit.settings import CommonSettings
from services.scorer.settings import ScorerSettings
from services.simulator.offline import OfflineConfig, Truth, generate
from services.simulator.provision import provision
from services.simulator.sinks import HttpSink

OUT = REPO / ".local" / "live_check"
PORTS = {"ingest": 28001, "scorer": 28002, "coordination": 28003}  # 8001-8010, 18001-18010 are taken
SERVICES = {
    "ingest": "services.ingest.app",
    "scorer": "services.scorer.main",
    "coordination": "services.coordination.app",
}
BATCH = 1000  # events a post: the most the ingest API takes
# Report time an institution's events may wait to fill a post. Institutions report as they go: posting
# only full batches held a small bank's transfers back for up to 12 hours of traffic behind everyone
# else's calls and transfers, which the offline replay (in report order) never sees.
FLUSH_S = 60.0


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m deploy.live_check", description=__doc__)
    p.add_argument("--population", type=int, default=10_000)
    p.add_argument("--warm-days", type=float, default=1.0, help="days of traffic before the measured ones")
    p.add_argument("--days", type=float, default=1.0, help="days of traffic measured")
    p.add_argument("--scams-per-day", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1007, help="the world's seed (make train evaluates on 1007)")
    p.add_argument("--concurrency", type=int, default=8, help="posts in flight")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds the scorer may take to catch up")
    p.add_argument("--keep", action="store_true", help="keep the scratch database and topics")
    return p.parse_args(argv)


def _env(tag: str, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),  # this checkout's code, whichever editable install the venv has
        "DATABASE_URL": database_url,
        "STOPLINE_TOPIC_PREFIX": f"lc-{tag}-",
        "STOPLINE_LOG_LEVEL": "WARNING",
        "STOPLINE_INGEST_PORT": str(PORTS["ingest"]),
        "STOPLINE_SCORER_PORT": str(PORTS["scorer"]),
        "STOPLINE_COORDINATION_PORT": str(PORTS["coordination"]),
    }


def _module(args: list[str], env: dict[str, str], log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own modules, fixed arguments
        [sys.executable, "-m", *args], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _step(args: list[str], env: dict[str, str]) -> None:
    if _module(args, env).wait(300) != 0:
        raise SystemExit(f"{' '.join(args)} failed")


@contextlib.contextmanager
def scratch(tag: str, logs: Path, *, keep: bool) -> Iterator[dict[str, str]]:
    """A migrated database, topics and the three services; everything removed at the end."""
    base = CommonSettings().database_url
    name = f"stopline_lc_{tag}"
    env = _env(tag, asyncio.run(scratch_database(base, name, create=True)))
    children: list[subprocess.Popen[bytes]] = []
    try:
        _step(["services.migrate", "upgrade"], env)
        _step(["streams.admin"], env)
        for service, module in SERVICES.items():
            children.append(_module([module], env, (logs / f"{service}.log").open("ab")))
            _healthy(service, children[-1])
        yield env
    finally:
        for child in reversed(children):
            child.terminate()
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        if not keep:
            _step(["streams.admin", "--delete"], env)
            asyncio.run(scratch_database(base, name, create=False))


def _healthy(service: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{service} exited at start")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{PORTS[service]}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"{service} not healthy after {timeout:.0f} s")


def batches(
    events: list[tuple[float, Any]], *, size: int = BATCH, flush_s: float = FLUSH_S
) -> Iterator[tuple[str, list[Any]]]:
    """(institution, its events) posts in report order: an institution's events are posted when `size`
    have gathered, or when the oldest of them has waited `flush_s` of report time."""
    buffers: dict[str, list[Any]] = {}
    since: dict[str, float] = {}
    for at, event in events:
        for institution in [i for i, t in since.items() if at - t >= flush_s]:
            del since[institution]
            yield institution, buffers.pop(institution)
        buffer = buffers.setdefault(event.institution, [])
        since.setdefault(event.institution, at)
        buffer.append(event)
        if len(buffer) >= size:
            del since[event.institution]
            yield event.institution, buffers.pop(event.institution)
    yield from buffers.items()


async def post(events: list[tuple[float, Any]], keys: dict[str, str], concurrency: int) -> dict[str, int]:
    """The events in report order (`batches`), `concurrency` posts in flight."""
    sink = HttpSink(f"http://127.0.0.1:{PORTS['ingest']}", keys, connections=concurrency)
    in_flight: set[asyncio.Task[Any]] = set()
    counts = {"acked": 0, "failed": 0}

    def done(tasks: set[asyncio.Task[Any]]) -> None:
        for task in tasks:
            result = task.result()
            counts["acked" if result.error is None else "failed"] += result.acked or 0

    for institution, batch in batches(events):
        in_flight.add(asyncio.create_task(sink.send(institution, batch)))
        if len(in_flight) >= concurrency:
            finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            done(finished)
    if in_flight:
        finished, _ = await asyncio.wait(in_flight)
        done(finished)
    await sink.close()
    return counts


def compare(live: dict[str, Any], offline: dict[str, Any]) -> dict[str, Any]:
    """Where the live path and the offline replay of the same traffic differ."""
    keys = ("alerts", "false_alerts", "false_per_1000_people_day", "caught", "caught_early", "recall")
    out: dict[str, Any] = {k: {"live": live[k], "offline": offline[k]} for k in keys}
    out["per_typology"] = {
        t: {
            "live": live["per_typology"].get(t, {}).get("caught"),
            "offline": v["caught"],
            "episodes": v["episodes"],
        }
        for t, v in offline["per_typology"].items()
    }
    out["hard_negatives"] = {
        k: {
            "live": live["hard_negatives"].get(k, {}).get("alerted"),
            "offline": v["alerted"],
            "episodes": v["episodes"],
        }
        for k, v in offline["hard_negatives"].items()
    }
    out["agree"] = all(
        live[k] == offline[k] for k in ("alerts", "false_alerts", "caught", "caught_early")
    ) and all(
        v["live"] == v["offline"] for part in ("per_typology", "hard_negatives") for v in out[part].values()
    )
    return out


def one_sided(
    live: list[Any], offline: list[Any], window: tuple[float, float]
) -> dict[str, list[dict[str, Any]]]:
    """The alerts of the window only one side raised. Alert ids are derived from what raised the alert
    (typology, subject, first trigger), so the same alert has the same id on both sides."""

    def latest(found: list[Any]) -> dict[Any, Any]:
        by_id: dict[Any, Any] = {}
        for alert in found:
            if window[0] <= alert.event_time.timestamp() < window[1]:
                if alert.alert_id not in by_id or alert.revision > by_id[alert.alert_id].revision:
                    by_id[alert.alert_id] = alert
        return by_id

    def brief(alert: Any) -> dict[str, Any]:
        return {
            "alert_id": str(alert.alert_id),
            "typology": alert.typology,
            "event_time": alert.event_time.isoformat(),
            "revision": alert.revision,
            "triggering_event_ids": alert.triggering_event_ids,
        }

    mine, theirs = latest(live), latest(offline)
    return {
        "only_live": [brief(a) for i, a in mine.items() if i not in theirs],
        "only_offline": [brief(a) for i, a in theirs.items() if i not in mine],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    tag = f"{int(time.time()):x}"
    logs = OUT / tag
    logs.mkdir(parents=True, exist_ok=True)
    span = args.warm_days + args.days
    # Dated to end a few minutes ago: the ingest API refuses events from the future and older than its
    # history window.
    start = (datetime.now(UTC) - timedelta(days=span, minutes=10)).replace(microsecond=0)
    config = OfflineConfig(
        population=args.population,
        days=span,
        scams_per_day=args.scams_per_day,
        seed=args.seed,
        start=start,
        run_tag=f"lc{tag}",
    )
    truth = Truth()
    events = list(generate(config, truth))
    window = (start.timestamp() + args.warm_days * 86_400, start.timestamp() + span * 86_400)
    version = active_version(ARTIFACTS)
    began = time.monotonic()
    offline_alerts = (
        OfflineScorer(ARTIFACTS, version, ScorerSettings(model_alert_threshold=0)).run(events).alerts
    )
    offline_s = time.monotonic() - began
    with scratch(tag, logs, keep=args.keep) as env:
        common = CommonSettings(topic_prefix=env["STOPLINE_TOPIC_PREFIX"], database_url=env["DATABASE_URL"])
        keys = asyncio.run(provision(common.database_url, logs / "keys.json"))
        began = time.monotonic()
        sent = asyncio.run(post(events, keys, args.concurrency))
        posted_s = time.monotonic() - began
        if not asyncio.run(caught_up(common, timeout_s=args.timeout)):
            raise SystemExit(f"the scorer did not catch up within {args.timeout:.0f} s; see {logs}")
        live_s = time.monotonic() - began
        alerts = asyncio.run(read_alerts(common))
    (logs / "alerts.jsonl").write_text("".join(a.model_dump_json() + "\n" for a in alerts))
    offline_found = [a for _, a in offline_alerts]
    (logs / "offline-alerts.jsonl").write_text("".join(a.model_dump_json() + "\n" for a in offline_found))

    def measured(found: list[Any]) -> dict[str, Any]:
        timed = [(a.event_time.timestamp(), a) for a in found]
        return measure(
            timed, truth.episodes, truth.benign, people=args.population, start=window[0], end=window[1]
        ).as_dict()

    live = measured(alerts)
    offline = measured(offline_found)
    result = {
        "settings": vars(args),
        "model": version,
        "events": len(events),
        "posted": sent,
        "seconds": {
            "offline": round(offline_s, 1),
            "post": round(posted_s, 1),
            "post_and_score": round(live_s, 1),
        },
        "live": live,
        "offline": offline,
        "comparison": {**compare(live, offline), **one_sided(alerts, offline_found, window)},
        "logs": str(logs),
    }
    (logs / "result.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> None:
    result = run(parse(argv))
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
