"""The outbox's housekeeping: messages delivered or given up that were queued longer ago than the retention
are removed, at start and then every hour, a batch per transaction. A pending message, or one leased by a
relay (in flight), is never removed, nor a finished one whose copy on another channel is still to be sent.

What a removed row no longer does: keep its message id taken. A refused answer's notice is queued once per
record by that id (`add_once`); a record read again after its notice was removed would be told again, so the
retention (90 days by default) is kept well past the answer topics' (30 days, `streams.topics`), past which
Kafka no longer has the record to read again. A notice or an escalation already sent is likewise queued
again only if what triggers it recurs after the retention; its receiver drops a message id it has processed.
Running on several instances at once is safe: each batch skips the rows another holds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination import metrics
from services.coordination.delivery import repository
from services.kit.purge import RetentionPurge


class OutboxPurge(RetentionPurge):
    name = "outbox purge"
    counter = metrics.OUTBOX_PURGED

    async def remove(self, session: AsyncSession, *, cutoff: datetime, limit: int) -> int:
        return await repository.remove_finished(session, before=cutoff, limit=limit)
