"""The de-duplication ledger's housekeeping: event ids accepted longer ago than the retention are
forgotten (a retry that late is no longer recognised as one), at start and then every hour, a batch per
transaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest import repository
from services.kit.db import unit_of_work
from services.kit.logging import log_fields
from services.kit.periodic import PeriodicJob

log = logging.getLogger(__name__)
# Ids forgotten per transaction: an hour's ids at a high rate are millions, one DELETE of which would
# outlast the statement timeout, be rolled back, and leave more for the next hour, for good.
BATCH = 10_000


class LedgerPurge(PeriodicJob):
    name = "dedup ledger purge"

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, retention_days: int, batch: int = BATCH
    ) -> None:
        super().__init__(interval_s=3600.0)
        self.sessions = sessions
        self.retention = timedelta(days=retention_days)
        self.batch = batch

    async def once(self) -> int:
        cutoff = datetime.now(UTC) - self.retention
        removed = 0
        while True:  # ends: each round forgets what is older than a fixed cutoff, until none is left
            async with unit_of_work(self.sessions) as session:
                n = await repository.forget_before(session, cutoff=cutoff, limit=self.batch)
            removed += n
            if n < self.batch:
                break
        log.info("dedup ledger purged", extra=log_fields(removed=removed))
        return removed
