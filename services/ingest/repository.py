"""SQL of the ingest API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import DateTime, String, delete, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.models import IngestedEvent


async def claim_new(
    session: AsyncSession, *, institution_id: str, event_ids: Sequence[str], received_at: datetime
) -> set[str]:
    """Record the ids not seen before and return them. A concurrent claim of the same id waits on
    the primary key until the first transaction ends, so an id is claimed at most once. The ids go as
    one array parameter (`unnest`), not a row of parameters each: a third of the time for 100 ids."""
    ids = func.unnest(literal(list(event_ids), ARRAY(String)))
    stmt = (
        insert(IngestedEvent)
        .from_select(
            ["institution_id", "event_id", "received_at"],
            select(literal(institution_id, String), ids, literal(received_at, DateTime(timezone=True))),
        )
        .on_conflict_do_nothing()
        .returning(IngestedEvent.event_id)
    )
    return set((await session.execute(stmt)).scalars())


async def forget_before(session: AsyncSession, *, cutoff: datetime) -> int:
    result = await session.execute(delete(IngestedEvent).where(IngestedEvent.received_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]
