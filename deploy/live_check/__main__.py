"""`python -m deploy.live_check`: the model's quality on the live path, end to end. Starts ingest, scorer
and coordination on a scratch database and topic prefix, drives them with the simulator (warm-up, then
live traffic with scams), and matches the alerts on Kafka with the simulator's ground truth: precision,
scam recall and alerts a minute. A separate check from the offline held-out evaluation of `make train`.

    python -m deploy.live_check --warmup 1 --population 14000 --duration 300
    python -m deploy.live_check ... --table .local/live_check/live.npz   # also the live feature rows
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
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx

from deploy.live_check.topics import read_alerts, save_live_table
from deploy.live_check.truth import load_truth, measure
from deploy.local.common import REPO_ROOT as REPO
from services.kit.db import scratch_database
from services.kit.settings import CommonSettings

OUT = REPO / ".local" / "live_check"
PORTS = {"ingest": 28001, "scorer": 28002, "coordination": 28003}  # 8001-8010, 18001-18010 are taken
SERVICES = {
    "ingest": "services.ingest.app",
    "scorer": "services.scorer.main",
    "coordination": "services.coordination.app",
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m deploy.live_check", description=__doc__)
    p.add_argument("--warmup", type=float, default=1.0, help="days of history the simulator sends first")
    p.add_argument("--rate", type=float, help="events/s of live traffic (default: the population's pace)")
    p.add_argument("--population", type=int, default=14000)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of live traffic")
    p.add_argument("--scams-per-minute", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drain", type=float, default=20.0, help="seconds left to the scorer after the end")
    p.add_argument("--table", type=Path, help="also write the live money-outs' feature rows (.npz)")
    p.add_argument("--keep", action="store_true", help="keep the scratch database and topics")
    p.add_argument("sim_args", nargs="*", help="more simulator arguments, after `--`")
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


def _live_start(sim_log: Path, fallback: datetime) -> datetime:
    """When the simulator's live phase began (its 'simulator started' log line): warm-up alerts are
    reported apart, since warm-up history carries no scams."""
    for line in sim_log.read_text(errors="replace").splitlines():
        if "simulator started" in line and line.startswith("{"):
            with contextlib.suppress(ValueError, KeyError):
                return datetime.fromisoformat(json.loads(line)["ts"])
    return fallback


def run(args: argparse.Namespace) -> dict[str, Any]:
    tag = f"{int(time.time()):x}"
    logs = OUT / tag
    logs.mkdir(parents=True, exist_ok=True)
    truth, keys, sim_log = logs / "truth.jsonl", logs / "keys.json", logs / "simulator.log"
    simulator = [
        *("services.simulator", "--provision", "--sink", "http", "--metrics-port", "0"),
        *("--ingest-url", f"http://127.0.0.1:{PORTS['ingest']}", "--truth", str(truth), "--keys", str(keys)),
        *("--warmup", str(args.warmup), "--population", str(args.population)),
        *(("--rate", str(args.rate)) if args.rate is not None else ()),
        *("--duration", str(args.duration), "--scams-per-minute", str(args.scams_per_minute)),
        *("--seed", str(args.seed), *args.sim_args),
    ]
    with scratch(tag, logs, keep=args.keep) as env:
        launched = datetime.now(UTC)
        env_sim = {**env, "STOPLINE_LOG_LEVEL": "INFO"}
        began = time.monotonic()
        with sim_log.open("ab") as out:
            if _module(simulator, env_sim, out).wait() != 0:
                raise SystemExit(f"the simulator failed; see {sim_log}")
        sim_seconds = time.monotonic() - began
        time.sleep(args.drain)
        common = CommonSettings(topic_prefix=env["STOPLINE_TOPIC_PREFIX"])
        alerts = asyncio.run(read_alerts(common))
        (logs / "alerts.jsonl").write_text("".join(a.model_dump_json() + "\n" for a in alerts))
        live_from = _live_start(sim_log, launched)
        warmup_minutes = (live_from - launched).total_seconds() / 60
        live = [a for a in alerts if a.event_time >= live_from]
        episodes = load_truth(truth)
        quality = measure(live, episodes, minutes=args.duration / 60)
        # What an operator of `make run` sees from the start: warm-up history carries no scams, so every
        # alert on it is false, and it arrives in the first minutes.
        overall = measure(alerts, episodes, minutes=warmup_minutes + args.duration / 60)
        table = None
        if args.table is not None:
            table = asyncio.run(save_live_table(common, truth, args.table, since=0.0))
    result = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("table", "keep")},
        "model": (REPO / "models" / "artifacts" / "ACTIVE").read_text().strip(),
        "live": quality.as_dict(),
        "warmup": {"minutes": round(warmup_minutes, 2), "alerts": overall.alerts - quality.alerts},
        "from_start": {k: overall.as_dict()[k] for k in ("alerts", "precision", "alerts_per_min", "minutes")},
        "live_from": live_from.isoformat(),
        "simulator_seconds": round(sim_seconds, 1),
        "live_table": table,
        "logs": str(logs),
    }
    (logs / "result.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> None:
    result = run(parse(argv))
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
