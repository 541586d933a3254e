"""SQL of the ingest API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.models import IngestedEvent


async def claim_new(
    session: AsyncSession, *, institution_id: str, event_ids: Sequence[str], received_at: datetime
) -> set[str]:
    """Record the ids not seen before and return them. A concurrent claim of the same id waits on
    the primary key until the first transaction ends, so an id is claimed at most once."""
    stmt = (
        insert(IngestedEvent)
        .values(
            [{"institution_id": institution_id, "event_id": e, "received_at": received_at} for e in event_ids]
        )
        .on_conflict_do_nothing()
        .returning(IngestedEvent.event_id)
    )
    return set((await session.execute(stmt)).scalars())


async def forget_before(session: AsyncSession, *, cutoff: datetime) -> int:
    result = await session.execute(delete(IngestedEvent).where(IngestedEvent.received_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]
