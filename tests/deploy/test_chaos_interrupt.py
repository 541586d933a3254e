"""The fault suite stopped while it holds a process frozen (Ctrl-C, SIGTERM from a test's timeout or a CI
cancel) lets it run again as it unwinds: a stopped process takes no signal but SIGKILL, so the suite's
teardown would wait on it, and a frozen Kafka node would be left behind."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from deploy.chaos.faults import Fault, Injector
from deploy.chaos.stack import Stack
from deploy.chaos.traffic import Traffic
from tests.kafka_tools import eventually


def _state(proc: subprocess.Popen[bytes]) -> str:
    # /proc/<pid>/stat: "pid (comm) state ...": T when stopped by a signal.
    return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def process() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "600"])  # noqa: S607 - coreutils
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("what", ["service instance", "Kafka node"])
async def test_a_freeze_interrupted_lets_its_process_run_again(
    what: str, process: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    injector = Injector(cast(Stack, None), cast(Traffic, None))
    fault = Fault("freeze", "target", at=0.0)
    freeze: Any
    if what == "Kafka node":
        monkeypatch.setattr("deploy.local.kafka.running_node", lambda node: process)
        freeze = injector._freeze_node(cast(Any, None), fault)
    else:
        freeze = injector._freeze(cast(Any, SimpleNamespace(proc=process)), fault)
    task = asyncio.ensure_future(freeze)
    try:
        await eventually(lambda: _state(process) == "T", timeout_s=5, every_s=0.01)  # frozen: interrupt
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        assert _state(process) != "T"
    finally:
        await injector.http.aclose()
