"""What coordination runs besides answering requests: its consumers, the outbox relay, the deadline
scheduler and the scheduler's periodic jobs. The API runs those its settings switch on; the worker
(services.coordination.worker) runs the relay, the scheduler and the responses consumer on its own. Both
start, stop and judge them here, so a process's health says the same of the same components; the worker
adds Kafka to its readiness (the relay is all it is for), the API does not (it answers meanwhile, not ready
only while its consumers hold no partitions)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.coordination.deadlines.scheduler import Scheduler
from services.coordination.delivery.relay import Relay
from services.coordination.instructions.service import Context
from services.coordination.jobs import with_the_scheduler
from services.coordination.settings import CoordinationSettings
from services.kit.db import ping
from services.kit.http import STOPPED, consumer_liveness, group_health, task_health
from services.kit.periodic import PeriodicJob
from services.kit.settings import CommonSettings
from streams.consumer import ConsumerRunner


class Background:
    def __init__(
        self,
        common: CommonSettings,
        settings: CoordinationSettings,
        sessions: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
        ctx: Context,
        *,
        runners: dict[str, ConsumerRunner],
        relay: bool,
        scheduler: bool,
    ) -> None:
        self.engine = engine
        self.runners = runners
        self.relay = Relay(common, settings, sessions) if relay else None
        self.scheduler = (
            Scheduler(sessions, ctx, interval_s=settings.scheduler_interval_s) if scheduler else None
        )
        self.jobs: dict[str, PeriodicJob] = with_the_scheduler(sessions, settings) if scheduler else {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """The serving process's: they run while it serves; then its database connections are closed."""
        await self.start()
        app.state.relay = self.relay  # (tests reach it)
        try:
            yield
        finally:
            await self.stop()
            await self.engine.dispose()

    async def start(self) -> None:
        for name, runner in self.runners.items():
            self.tasks[name] = asyncio.create_task(runner.run(), name=name)
        if self.relay is not None:
            await self.relay.start()
        if self.scheduler is not None:
            self.scheduler.start()
        for name, job in self.jobs.items():
            self.tasks[name] = asyncio.create_task(job.run(), name=name)

    async def stop(self) -> None:
        """Each finishes what it has in hand (within its grace), then ends. The consumers and jobs are told
        first (that does not wait): told after the scheduler's and relay's graces (10 s each), a consumer
        would go on taking new batches for up to 20 s after SIGTERM."""
        for name, runner in self.runners.items():
            runner.stop()
            if name in self.tasks and not runner.started.is_set():
                self.tasks[name].cancel()  # still waiting for Kafka: nothing in hand
        for job in self.jobs.values():
            job.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.tasks:
            await asyncio.wait(self.tasks.values(), timeout=15)

    def liveness(self) -> dict[str, str]:
        """None of them has ended, no consumer's handler is stuck (asks no dependency)."""
        checks = task_health(self.tasks) | consumer_liveness(self.runners)
        if self.relay is not None:
            checks["relay"] = "ok" if all(not t.done() for t in self.relay.tasks) else STOPPED
        return checks

    async def readiness(self) -> dict[str, Any]:
        """The database answers, none of them has ended, and each consumer holds its partitions."""
        return {"database": await ping(self.engine), **self.liveness(), **group_health(self.runners)}
