"""The de-duplication ledger's housekeeping: event ids accepted longer ago than the retention are
forgotten (a retry that late is no longer recognised as one), at start and then every hour."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest import repository
from services.kit.db import unit_of_work
from services.kit.logging import log_fields
from services.kit.periodic import PeriodicJob

log = logging.getLogger(__name__)


class LedgerPurge(PeriodicJob):
    name = "dedup ledger purge"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, retention_days: int) -> None:
        super().__init__(interval_s=3600.0)
        self.sessions = sessions
        self.retention = timedelta(days=retention_days)

    async def once(self) -> int:
        async with unit_of_work(self.sessions) as session:
            removed = await repository.forget_before(session, cutoff=datetime.now(UTC) - self.retention)
        log.info("dedup ledger purged", extra=log_fields(removed=removed))
        return removed
