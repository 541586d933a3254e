"""SQL of the outbox: enqueue, claim (SKIP LOCKED, so relays never share a row), mark sent or retry, remove
once finished."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.coordination.delivery.models import OutboxMessage
from services.institutions.models import Institution

# What relays LISTEN on: every insert into the outbox notifies it, at commit, with the delivery channels
# queued (the trigger of migration 0025), so a relay wakes only the loop with work.
CHANNEL = "stopline_outbox"


async def add(session: AsyncSession, rows: Sequence[OutboxMessage]) -> None:
    session.add_all(rows)
    await session.flush()


async def add_once(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> bool:
    """Add the rows whose message id is not queued on their channel yet (the unique key decides, also
    against a transaction adding the same row at once: this one waits for it, then adds nothing); True
    if any was added."""
    if not rows:
        return False
    stmt = (
        insert(OutboxMessage)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["message_id", "channel"])
        .returning(OutboxMessage.channel)
    )
    return bool((await session.execute(stmt)).scalars().all())


async def institution(session: AsyncSession, institution_id: str) -> Institution | None:
    return await session.get(Institution, institution_id)


# What a Kafka row's `last_error` says about its last attempt, for the relay that claims it next.
NOT_ON_KAFKA = "not on Kafka: nothing in flight"

# A relay's claim of a row: its id and its attempts counted by that claim. Another claim counts another
# attempt, so a relay that lost a row (its lease lapsed) can no longer write to it.
Claim = tuple[int, int]


def claim_of(row: OutboxMessage) -> Claim:
    """The claim `claim` just made of a row it returned (the row still shows the attempts before it)."""
    return (row.id, row.attempts + 1)


async def lease_kafka(
    session: AsyncSession, claims: Sequence[Claim], *, until: timedelta, note: str | None = None
) -> None:
    """Renew (a positive `until`) or end (zero: publish again at once) the lease of unsent messages this
    relay's claim still holds (another relay may have claimed them since), noting what is known of their
    attempt (`NOT_ON_KAFKA`; None: an attempt in flight)."""
    if not claims:
        return
    await session.execute(
        update(OutboxMessage)
        .where(
            tuple_(OutboxMessage.id, OutboxMessage.attempts).in_(claims),
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.dead_at.is_(None),
        )
        .values(next_attempt_at=func.now() + until, last_error=note)
        .execution_options(synchronize_session=False)
    )


async def publish_as(
    session: AsyncSession, claims: Sequence[Claim], *, publisher: str, lease: timedelta
) -> set[int]:
    """Note the producer about to publish these messages, where this relay's claim and lease still hold,
    and renew the lease; returns those (only they may be published). Whoever claims them next fences
    that producer first: what an earlier attempt left noted (`NOT_ON_KAFKA`) no longer holds."""
    if not claims:
        return set()
    taken = await session.execute(
        update(OutboxMessage)
        .where(
            tuple_(OutboxMessage.id, OutboxMessage.attempts).in_(claims),
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.next_attempt_at > func.now(),
        )
        .values(publisher=publisher, last_error=None, next_attempt_at=func.now() + lease)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    return set(taken.scalars())


async def mark_sent(session: AsyncSession, ids: Sequence[int], *, at: datetime) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(sent_at=at, last_error=None)
        .execution_options(synchronize_session=False)
    )


async def claim(session: AsyncSession, *, channel: str, limit: int, lease: timedelta) -> list[OutboxMessage]:
    """Due messages of a channel; each is leased (its next attempt pushed past `lease`, its attempt counted)
    so the publish or call runs outside any transaction and another relay does not take it meanwhile. The
    rows keep the attempts counted before this one: a Kafka message with any had an attempt that may have
    landed, by its `publisher`, which stays noted until the claimant publishes (`publish_as`), and the
    claim is known by the attempts it counted (`claim_of`)."""
    stmt = (
        select(OutboxMessage)
        .where(
            OutboxMessage.channel == channel,
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
    return rows


async def queued(session: AsyncSession, message_id: str) -> bool:
    """Whether a message with this id was ever queued (sent, dead or waiting)."""
    stmt = select(func.count()).where(OutboxMessage.message_id == message_id)
    return int((await session.execute(stmt)).scalar_one()) > 0


async def drop_unsent(session: AsyncSession, message_id: str, *, at: datetime, why: str) -> None:
    """Stop sending a message not sent yet (dead, with why); a relay's attempt already under way may still
    land."""
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.message_id == message_id,
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.dead_at.is_(None),
        )
        .values(dead_at=at, last_error=why)
        .execution_options(synchronize_session=False)
    )


async def retry_later(session: AsyncSession, claim: Claim, *, at: datetime, error: str) -> bool:
    """Schedule the next attempt where this claim still holds the unsent row (a relay whose lease lapsed
    must not move another's lease); True if it did."""
    return await _where_claimed(session, claim, next_attempt_at=at, last_error=error)


async def give_up(session: AsyncSession, claim: Claim, *, at: datetime, error: str) -> bool:
    """The row is dead, where this claim still holds it unsent; True if it was given up here."""
    return await _where_claimed(session, claim, dead_at=at, last_error=error)


async def _where_claimed(session: AsyncSession, claim: Claim, **values: object) -> bool:
    row_id, attempts = claim
    done = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == row_id,
            OutboxMessage.attempts == attempts,
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.dead_at.is_(None),
        )
        .values(**values)
        .returning(OutboxMessage.id)
    )
    return done.scalar_one_or_none() is not None


async def reached_or_waiting_elsewhere(session: AsyncSession, row: OutboxMessage) -> bool:
    """Whether the same message (one message id: an instruction's Kafka topic beside its webhook) was sent
    or is still to be sent on another channel: then its receiver has it, or may yet."""
    stmt = select(func.count()).where(
        OutboxMessage.message_id == row.message_id,
        OutboxMessage.id != row.id,
        OutboxMessage.dead_at.is_(None),
    )
    return int((await session.execute(stmt)).scalar_one()) > 0


async def backlog(session: AsyncSession) -> dict[str, tuple[int, datetime]]:
    """Per channel with messages waiting: how many, and when the oldest was queued."""
    stmt = (
        select(OutboxMessage.channel, func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.dead_at.is_(None))
        .group_by(OutboxMessage.channel)
    )
    return {channel: (int(count), oldest) for channel, count, oldest in (await session.execute(stmt)).all()}


# A row is final once delivered or given up; nothing writes to it any more (the partial index
# ix_outbox_finished holds these rows, by when they were queued).
FINISHED = or_(OutboxMessage.sent_at.is_not(None), OutboxMessage.dead_at.is_not(None))


async def remove_finished(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Remove at most `limit` messages queued before `before` and delivered or given up (the oldest first);
    how many were. Not one whose message is still to be sent on another channel: that channel's giving up
    asks whether this one reached the receiver (`reached_or_waiting_elsewhere`). Rows another transaction
    holds (a second instance's batch) are skipped, not waited for."""
    other = aliased(OutboxMessage)
    sibling_waiting = exists().where(
        other.message_id == OutboxMessage.message_id,
        other.id != OutboxMessage.id,
        other.sent_at.is_(None),
        other.dead_at.is_(None),
    )
    oldest = (
        select(OutboxMessage.id)
        .where(FINISHED, OutboxMessage.created_at < before, ~sibling_waiting)
        .order_by(OutboxMessage.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(OutboxMessage).where(OutboxMessage.id.in_(oldest)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def pending_count(session: AsyncSession) -> int:
    stmt = select(func.count()).where(OutboxMessage.sent_at.is_(None), OutboxMessage.dead_at.is_(None))
    return int((await session.execute(stmt)).scalar_one())
