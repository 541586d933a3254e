"""SQL of the audit log: appends and reads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.audit.models import AuditCheckpoint, AuditEntry, PendingAuditEntry

# The advisory lock that orders appends: the database's chaining trigger takes it at commit and holds it
# to the commit's end (migration 0024_audit_chained_at_commit).
CHAIN_LOCK = 0x5701_A0D1
CHECKPOINT_LOCK = 0x5701_A0D2  # one checkpoint recorded at a time


async def queue_all(session: AsyncSession, entries: list[PendingAuditEntry]) -> None:
    """Write entries for the database to chain at commit, in this order."""
    session.add_all(entries)
    await session.flush()


async def page(
    session: AsyncSession,
    *,
    case_id: uuid.UUID | None,
    entity_id: str | None,
    actor: str | None,
    since: datetime | None,
    after_id: int,
    limit: int,
    newest: bool = False,
) -> list[AuditEntry]:
    """Entries in chain order: the first `limit` after `after_id`, or with `newest` the last `limit`."""
    stmt = select(AuditEntry).where(AuditEntry.id > after_id)
    if case_id is not None:
        stmt = stmt.where(AuditEntry.case_id == case_id)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if newest:
        stmt = stmt.order_by(AuditEntry.id.desc()).limit(limit)
        return list(reversed((await session.execute(stmt)).scalars().all()))
    stmt = stmt.order_by(AuditEntry.id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(AuditEntry))).scalar_one())


async def stream_all(
    session: AsyncSession, *, after: int = 0, batch: int = 1000
) -> AsyncIterator[AuditEntry]:
    """Every row after `after` in chain order, read in keyset pages so a long log does not sit in memory."""
    while True:
        stmt = select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(batch)
        rows = list((await session.execute(stmt)).scalars())
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].id
        session.expunge_all()


async def entry(session: AsyncSession, entry_id: int) -> AuditEntry | None:
    return await session.get(AuditEntry, entry_id)


async def last_checkpoint(
    session: AsyncSession, *, whole: bool = False, ok: bool = False
) -> AuditCheckpoint | None:
    """The newest checkpoint; with `whole` the newest of a walk of the whole chain, with `ok` the newest
    that held."""
    stmt = select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
    if whole:
        stmt = stmt.where(AuditCheckpoint.whole)
    if ok:
        stmt = stmt.where(AuditCheckpoint.ok)
    return (await session.execute(stmt)).scalar()


async def add_checkpoint(
    session: AsyncSession, checkpoint: AuditCheckpoint, *, after: int | None, keep_s: float
) -> bool:
    """Record a checkpoint if the newest is still the one (by id) its walk started from: one check at a time
    across instances (a walk that began before another's ended, and would say a chain held that the other
    found broken, is not recorded). Forget the checkpoints of walks from a checkpoint that held and are
    older than `keep_s` (a check a minute would grow the table without end); the whole walks' and the
    failures stay."""
    await session.execute(select(func.pg_advisory_xact_lock(CHECKPOINT_LOCK)))
    newest = await last_checkpoint(session)
    if (newest.id if newest is not None else None) != after:
        return False
    session.add(checkpoint)
    cutoff = datetime.now(UTC) - timedelta(seconds=keep_s)
    await session.execute(
        delete(AuditCheckpoint).where(~AuditCheckpoint.whole, AuditCheckpoint.ok, AuditCheckpoint.at < cutoff)
    )
    return True
