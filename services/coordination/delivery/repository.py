"""SQL of the outbox: enqueue, claim (SKIP LOCKED, so relays never share a row), mark sent or retry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.delivery.models import OutboxMessage
from services.institutions.models import Institution

CHANNEL = "stopline_outbox"


async def add(session: AsyncSession, rows: Sequence[OutboxMessage]) -> None:
    session.add_all(rows)
    await session.flush()
    # Delivered to listening relays when (and only if) this transaction commits. It names the delivery
    # channels queued, so a relay wakes only the loop with work (no webhook claim for a Kafka message).
    channels = ",".join(sorted({r.channel for r in rows}))
    await session.execute(text("select pg_notify(:c, :p)"), {"c": CHANNEL, "p": channels})


async def institution(session: AsyncSession, institution_id: str) -> Institution | None:
    return await session.get(Institution, institution_id)


async def claim_kafka(session: AsyncSession, *, limit: int) -> list[OutboxMessage]:
    """Unsent Kafka messages, locked until this transaction ends; rows another relay holds are skipped."""
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.channel == "kafka", OutboxMessage.sent_at.is_(None))
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def mark_sent(session: AsyncSession, ids: Sequence[int], *, at: datetime) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(sent_at=at, last_error=None)
        .execution_options(synchronize_session=False)
    )


async def claim_webhooks(session: AsyncSession, *, limit: int, lease: timedelta) -> list[OutboxMessage]:
    """Due webhook messages; each is leased (its next attempt pushed past the call's timeout) so the
    HTTP call runs outside any transaction and another relay does not take it meanwhile."""
    stmt = (
        select(OutboxMessage)
        .where(
            OutboxMessage.channel == "webhook",
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.dead_at.is_(None),
            OutboxMessage.next_attempt_at <= func.now(),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list((await session.execute(stmt)).scalars())
    if rows:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([r.id for r in rows]))
            .values(next_attempt_at=func.now() + lease, attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        for row in rows:
            row.attempts += 1
    return rows


async def retry_later(session: AsyncSession, row_id: int, *, at: datetime, error: str) -> None:
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == row_id).values(next_attempt_at=at, last_error=error)
    )


async def give_up(session: AsyncSession, row_id: int, *, at: datetime, error: str) -> None:
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id == row_id).values(dead_at=at, last_error=error)
    )


async def pending_count(session: AsyncSession) -> int:
    stmt = select(func.count()).where(OutboxMessage.sent_at.is_(None), OutboxMessage.dead_at.is_(None))
    return int((await session.execute(stmt)).scalar_one())
