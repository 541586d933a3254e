"""The HTTP services as real processes (uvicorn, JSON logs to a file each) on free ports, on the test
session's database and topics: what a schema-driven fuzzer and a log search run against."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy.local.common import free_port
from tests.conftest import Infra

SERVICES = ("ingest", "coordination", "notifier", "blocklist", "console")


@dataclass(frozen=True)
class Running:
    urls: dict[str, str]
    logs: dict[str, Path]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def services(
    infra: Infra, log_dir: Path, env: Mapping[str, str] | None = None, names: tuple[str, ...] = SERVICES
) -> Iterator[Running]:
    """Start the HTTP services `names` (all of them by default) with settings `env` besides the session's;
    stop them all on leaving (and if one does not come up)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    logs: dict[str, Path] = {}
    ports = {name: free_port() for name in names}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    # The console is a client of the coordination and notifier APIs.
    console = (
        {
            "STOPLINE_CONSOLE_COORDINATION_URL": urls["coordination"],
            "STOPLINE_CONSOLE_NOTIFIER_URL": urls["notifier"],
        }
        if "console" in names
        else {}
    )
    try:
        for name, port in ports.items():
            logs[name] = log_dir / f"{name}.log"
            child_env = {
                **os.environ,
                "DATABASE_URL": infra.database_url,
                "STOPLINE_TOPIC_PREFIX": infra.prefix,
                f"STOPLINE_{name.upper()}_PORT": str(port),
                **console,
                **(env or {}),
            }
            with logs[name].open("wb") as out:
                procs.append(
                    subprocess.Popen(  # noqa: S603 - our own interpreter and module
                        [sys.executable, "-c", f"from services.{name}.app import main; main()"],
                        env=child_env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 60
        for name, url in urls.items():
            while not _healthy(url):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"{name} did not come up; see {logs[name]}")
                time.sleep(0.2)
        yield Running(urls, logs)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
