"""Runs the timed jobs every `scheduler_interval_s`, each in its own unit of work. Rows are claimed with
FOR UPDATE SKIP LOCKED, so several coordination instances can run the scheduler without doing a row
twice; a failed run is counted, logged and retried at the next tick (nothing is half-done: it rolled back)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import metrics
from services.coordination.deadlines import jobs
from services.coordination.instructions.service import Context
from services.kit import outages
from services.kit.db import unit_of_work

log = logging.getLogger(__name__)
Job = Callable[..., Awaitable[int]]
MAX_BATCHES = 5
JOBS: dict[str, Job] = {"expire_holds": jobs.expire_holds, "escalate_overdue": jobs.escalate_overdue}


class Scheduler:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], ctx: Context, *, interval_s: float
    ) -> None:
        self.sessions = sessions
        self.ctx = ctx
        self.interval_s = interval_s
        self._stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name="deadline-scheduler")

    async def stop(self, grace_s: float = 10.0) -> None:
        self._stopping.set()
        if self.task is not None:
            done, _ = await asyncio.wait([self.task], timeout=grace_s)
            if not done:
                self.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.task

    async def tick(self) -> dict[str, int]:
        """Run every job once; a job repeats while it fills whole batches, up to `MAX_BATCHES` a tick,
        so a backlog (thousands overdue at once) is worked off without starving the API."""
        done: dict[str, int] = {}
        for name, job in JOBS.items():
            total = 0
            try:
                while True:
                    async with unit_of_work(self.sessions) as session:
                        n = await job(session, now=datetime.now(UTC), ctx=self.ctx)
                    total += n
                    if n < jobs.BATCH or total >= MAX_BATCHES * jobs.BATCH:
                        break
            except Exception as exc:  # noqa: BLE001 - logged and counted; the next tick finds the work again
                metrics.SCHEDULER_ERRORS.labels(name).inc()
                outages.log_failure(log, exc, "scheduled job failed; retried next tick", job=name)
            done[name] = total
        return done

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
