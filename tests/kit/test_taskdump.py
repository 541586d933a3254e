"""SIGUSR1 makes a service log what each of its asyncio tasks waits on, as code locations."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from services.kit import taskdump
from tests.kafka_tools import eventually


async def test_sigusr1_logs_the_chain_of_awaits_of_every_task(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger=taskdump.__name__)
    gate = asyncio.Event()

    async def waits_for_the_gate() -> None:
        await gate.wait()

    async def stuck() -> None:
        await waits_for_the_gate()

    task = asyncio.create_task(stuck(), name="the-stuck-one")
    taskdump.install()
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        await eventually(lambda: any(r.getMessage() == "task dump done" for r in caplog.records), timeout_s=5)
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        gate.set()
        await task
    dumped = [r.fields for r in caplog.records if r.getMessage() == "task waiting"]  # type: ignore[attr-defined]
    logged = {fields["task"]: fields["awaits"] for fields in dumped}
    chain = logged["the-stuck-one"]
    assert chain[0].startswith("tests/kit/test_taskdump.py:") and chain[0].endswith(".stuck")
    assert chain[1].endswith("waits_for_the_gate")
    assert chain[2].startswith("asyncio/locks.py:") and chain[2].endswith("Event.wait")
    assert chain[3] == "Future"  # what the innermost await is suspended on
