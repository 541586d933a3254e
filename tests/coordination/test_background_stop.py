"""On shutdown, coordination's consumers and periodic jobs are told to stop before the scheduler's and the
relay's batches in hand are waited for (up to 10 s each): a consumer told only after them would go on
taking new batches for up to 20 s after SIGTERM, past an orchestrator's grace."""

from __future__ import annotations

import asyncio
from typing import Any

from services.coordination.background import Background


class _Told:
    """A consumer runner or periodic job: `stop` only asks it to stop (it does not wait)."""

    def __init__(self, name: str, said: list[str]) -> None:
        self.name, self.said = name, said

    def stop(self) -> None:
        self.said.append(f"{self.name} told to stop")


class _Finishing:
    """A scheduler or relay: `stop` waits for the batch in hand, here one that ends when the test says."""

    def __init__(self, name: str, said: list[str], batch_done: asyncio.Event) -> None:
        self.name, self.said, self.batch_done = name, said, batch_done
        self.tasks: list[asyncio.Task[None]] = []
        self.finishing = asyncio.Event()

    async def stop(self) -> None:
        self.said.append(f"{self.name} finishing its batch")
        self.finishing.set()
        await self.batch_done.wait()


async def test_consumers_and_jobs_are_told_to_stop_before_the_scheduler_and_relay_are_waited_for():
    said: list[str] = []
    batch_done = asyncio.Event()
    background: Any = Background.__new__(Background)
    background.runners = {"responses_consumer": _Told("responses consumer", said)}
    background.jobs = {"audit_check": _Told("audit job", said)}
    background.scheduler = scheduler = _Finishing("scheduler", said, batch_done)
    background.relay = _Finishing("relay", said, batch_done)
    background.tasks = {}

    stopping = asyncio.create_task(background.stop())
    await asyncio.wait_for(scheduler.finishing.wait(), 5)
    assert said == [
        "responses consumer told to stop",
        "audit job told to stop",
        "scheduler finishing its batch",
    ]
    batch_done.set()
    await asyncio.wait_for(stopping, 5)
    assert said[-1] == "relay finishing its batch"
