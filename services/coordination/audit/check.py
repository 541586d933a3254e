"""The audit chain verified on a schedule, its verdict as gauges: a broken chain (or a verification
that no longer runs) is alerted on, not found by chance when someone opens the audit page.

Every `interval_s` the rows appended since the newest checkpoint are verified from it, and the whole chain
from its first row every `whole_interval_s` (or after a check that failed): each run records where it ended,
so the audit page verifies a minute's rows, not the whole log, which grows without end. A whole walk must
meet the row the newest check that held ended at, unchanged, so a failure found by a check (rows deleted
at the head of the chain among them) stays until the rows are restored."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination import metrics
from services.kit.audit import repository, service
from services.kit.audit.models import AuditCheckpoint
from services.kit.db import unit_of_work
from services.kit.logging import log_fields
from services.kit.periodic import PeriodicJob

log = logging.getLogger(__name__)

KEEP_TAIL_CHECKPOINTS_S = 7 * 24 * 3600


class AuditCheck(PeriodicJob):
    name = "audit chain check"

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, interval_s: float, whole_interval_s: float
    ) -> None:
        super().__init__(interval_s=interval_s)
        self.sessions = sessions
        self.whole_interval_s = whole_interval_s

    async def once(self) -> service.Verdict:
        async with self.sessions() as session:
            last = await repository.last_checkpoint(session)
            whole = await repository.last_checkpoint(session, whole=True)
            # (the database's clock, as the checkpoints': every instance's the same)
            now = (await session.execute(select(func.now()))).scalar_one()
        due = whole is None or (now - whole.at).total_seconds() >= self.whole_interval_s
        return await self._walk(last, whole=last is None or not last.ok or due)

    async def whole(self) -> service.Verdict:
        """Walk the whole chain from its first row, through the row the newest check that held ended at."""
        async with self.sessions() as session:
            last = await repository.last_checkpoint(session)
        return await self._walk(last, whole=True)

    async def _walk(self, last: AuditCheckpoint | None, *, whole: bool) -> service.Verdict:
        """The whole chain, or the rows after `last` (a check that held) from it; recorded if it moved."""
        start = None if whole or last is None else service.Verdict.of(last)
        async with self.sessions() as session:
            verdict = await (service.verify(session, start=start) if start else service.verify_whole(session))
        if start is None or verdict != start:
            async with unit_of_work(self.sessions) as session:
                point = service.checkpoint(verdict, whole=start is None)
                after = last.id if last is not None else None
                if not await repository.add_checkpoint(
                    session, point, after=after, keep_s=KEEP_TAIL_CHECKPOINTS_S
                ):
                    return verdict  # another check was recorded meanwhile: the next run starts from it
        metrics.AUDIT_CHAIN_OK.set(1 if verdict.ok else 0)
        metrics.AUDIT_ROWS_VERIFIED.set(verdict.checked)
        if start is None:
            metrics.AUDIT_VERIFIED_AT.set_to_current_time()
        if not verdict.ok:
            log.error(
                "audit chain broken",
                extra=log_fields(first_bad_id=verdict.first_bad_id, reason=verdict.reason),
            )
        return verdict
