"""Child processes of `make run` and `make bench`: the services, started, health-checked and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

import httpx

from deploy.local.common import LOCAL_DIR, REPO_ROOT

PY = sys.executable
LOGS = LOCAL_DIR / "logs"


@dataclass
class Child:
    name: str
    args: list[str]
    url: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        if self.log is not None:
            self.log.close()
        self.log = (LOGS / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own modules, fixed arguments
            [PY, "-m", *self.args],
            cwd=REPO_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
        )

    def stop(self, timeout: float = 15) -> None:
        stop_all([self], timeout)


def stop_all(children: Sequence[Child], timeout: float = 15) -> None:
    """Stop the children together: each is told (SIGTERM) in the order given, then each is waited for, up
    to `timeout` in all; one still running then is killed. Told and waited for one after another, a
    dozen services' graceful stops (leaving groups, last commits) added up to tens of seconds."""
    running = [c.proc for c in children if c.proc is not None and c.proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGCONT)  # a stopped process cannot take its SIGTERM
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def step(args: list[str], what: str, timeout: float, *, quiet: bool = False) -> None:
    """Run a set-up command to its end; `quiet`: its log at warnings only (an info line of a tool's JSON
    log in `make run`'s banner says nothing to the person reading it)."""
    env = {**os.environ, "STOPLINE_LOG_LEVEL": "WARNING"} if quiet else None
    result = subprocess.run([PY, "-m", *args], cwd=REPO_ROOT, timeout=timeout, check=False, env=env)  # noqa: S603
    if result.returncode != 0:
        raise SystemExit(f"{what} failed (exit {result.returncode})")


def stack_running() -> bool:
    args = [PY, "-m", "deploy.local.stack", "status"]
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, timeout=30, check=False).returncode == 0  # noqa: S603


def wait_healthy(child: Child, timeout: float = 60) -> None:
    if child.url is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc is not None and child.proc.poll() is not None:
            raise SystemExit(f"{child.name} exited at start; see {LOGS / (child.name + '.log')}")
        try:
            if httpx.get(f"{child.url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{child.name} not healthy after {timeout:.0f}s; see {LOGS / (child.name + '.log')}")
