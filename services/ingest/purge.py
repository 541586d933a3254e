"""The de-duplication ledger's housekeeping: event ids accepted longer ago than the retention are
forgotten (a retry that late is no longer recognised as one), at start and then every hour, a batch per
transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest import repository
from services.kit.purge import RetentionPurge


class LedgerPurge(RetentionPurge):
    name = "dedup ledger purge"

    async def remove(self, session: AsyncSession, *, cutoff: datetime, limit: int) -> int:
        return await repository.forget_before(session, cutoff=cutoff, limit=limit)
