"""The audit chain verified on a schedule, its verdict as gauges: a broken chain (or a verification
that no longer runs) is alerted on, not found by chance when someone opens the audit page."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import metrics
from services.kit.audit import service
from services.kit.logging import log_fields
from services.kit.periodic import PeriodicJob

log = logging.getLogger(__name__)


class AuditCheck(PeriodicJob):
    name = "audit chain check"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, interval_s: float) -> None:
        super().__init__(interval_s=interval_s)
        self.sessions = sessions

    async def once(self) -> service.Verdict:
        async with self.sessions() as session:
            verdict = await service.verify(session)
        metrics.AUDIT_CHAIN_OK.set(1 if verdict.ok else 0)
        metrics.AUDIT_ROWS_VERIFIED.set(verdict.checked)
        metrics.AUDIT_VERIFIED_AT.set_to_current_time()
        if not verdict.ok:
            log.error(
                "audit chain broken",
                extra=log_fields(first_bad_id=verdict.first_bad_id, reason=verdict.reason),
            )
        return verdict
