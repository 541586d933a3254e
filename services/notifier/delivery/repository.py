"""SQL of deliveries: enqueue, claim due rows with a lease, record results and receipts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.delivery.models import Delivery


async def add(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    session.add_all([Delivery(**row) for row in rows])
    await session.flush()


async def claim_due(session: AsyncSession, *, now: datetime, lease_s: float, limit: int) -> list[Delivery]:
    """Take up to `limit` due messages: waiting ones and those whose sender's lease ran out (a crash).

    SKIP LOCKED lets several workers share the queue; the lease means a crashed sender's message is
    taken again, and the receiver de-duplicates on the message id."""
    due = (
        select(Delivery.id)
        .where(Delivery.status.in_(("pending", "sending")), Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(Delivery)
        .where(Delivery.id.in_(due.scalar_subquery()))
        .values(
            status="sending",
            attempts=Delivery.attempts + 1,
            next_attempt_at=now + timedelta(seconds=lease_s),
        )
        .returning(Delivery)
    )
    return list((await session.execute(stmt)).scalars())


async def finish_attempt(
    session: AsyncSession, *, delivery_id: uuid.UUID, attempt: int, values: dict[str, Any]
) -> bool:
    """Record the result of the row's `attempt`th claim unless a receipt got there first (then the row is no
    longer sending). A failure is recorded only by the claim still current: a sender whose lease ran out
    must not set back a row another has claimed since (its outcome then overwritten, or the row marked
    dead while the other's send goes through). A success is recorded whichever claim made it."""
    stmt = update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "sending")
    if values.get("status") != "sent":
        stmt = stmt.where(Delivery.attempts == attempt)
    returned = await session.execute(stmt.values(**values).returning(Delivery.id))
    return returned.scalar_one_or_none() is not None


async def get(session: AsyncSession, delivery_id: uuid.UUID, *, for_update: bool = False) -> Delivery | None:
    stmt = select(Delivery).where(Delivery.id == delivery_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def for_warning(session: AsyncSession, warning_id: uuid.UUID) -> list[Delivery]:
    stmt = select(Delivery).where(Delivery.warning_id == warning_id).order_by(Delivery.channel)
    return list((await session.execute(stmt)).scalars())
