"""Housekeeping: a table's rows older than a retention are removed, at start and then every hour, a batch per
transaction. Subclasses say what one batch removes; the loop, the log line and the count are here."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.db import unit_of_work
from services.kit.logging import log_fields
from services.kit.periodic import PeriodicJob

log = logging.getLogger(__name__)
# Rows removed per transaction: an hour's rows at a high rate are millions, one DELETE of which would
# outlast the statement timeout, be rolled back, and leave more for the next hour, for good.
BATCH = 10_000
INTERVAL_S = 3600.0


class RetentionPurge(PeriodicJob):
    """Removes what `remove` finds older than the cutoff, a batch at a time, until a batch comes short. A run
    cut short (stopped, the database away) keeps the batches it committed; the next run finds the rest."""

    name = "purge"
    counter: Counter | None = None  # rows removed, counted per committed batch

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, retention_days: float, batch: int = BATCH
    ) -> None:
        super().__init__(interval_s=INTERVAL_S)
        self.sessions = sessions
        self.retention = timedelta(days=retention_days)
        self.batch = batch

    async def remove(self, session: AsyncSession, *, cutoff: datetime, limit: int) -> int:
        """Remove at most `limit` rows older than `cutoff`; how many were."""
        raise NotImplementedError

    async def once(self) -> int:
        cutoff = datetime.now(UTC) - self.retention
        removed = 0
        while True:  # ends: each round removes what is older than a fixed cutoff, until none is left
            async with unit_of_work(self.sessions) as session:
                n = await self.remove(session, cutoff=cutoff, limit=self.batch)
            removed += n
            if self.counter is not None:
                self.counter.inc(n)
            if n < self.batch:
                break
        log.info("rows purged", extra=log_fields(job=self.name, removed=removed))
        return removed
