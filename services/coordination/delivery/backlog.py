"""The outbox's backlog as gauges, per channel: how many messages wait and how long the oldest has
waited (refreshed by a job: an alert on a relay that stalls needs the age, which no counter gives)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import metrics
from services.coordination.delivery import repository
from services.kit.periodic import PeriodicJob

CHANNELS = ("kafka", "webhook")


class OutboxBacklog(PeriodicJob):
    name = "outbox backlog"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, interval_s: float) -> None:
        super().__init__(interval_s=interval_s)
        self.sessions = sessions

    async def once(self) -> None:
        async with self.sessions() as session:
            waiting = await repository.backlog(session)
        now = datetime.now(UTC)
        for channel in CHANNELS:
            count, oldest = waiting.get(channel, (0, now))
            metrics.PENDING.labels(channel).set(count)
            metrics.OLDEST_PENDING.labels(channel).set(max(0.0, (now - oldest).total_seconds()))
