"""SQL of the blocklist: entries, reports, appeals, versions and the feed cursor."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.blocklist.models import (
    LIVE,
    VERSION_SEQ,
    Appeal,
    Entry,
    FeedCursor,
    Proposer,
    Receipt,
    Renewal,
    Report,
)
from services.kit.errors import Conflict

# Advisory lock of the published list: versions are taken and committed in order, so a reader that
# has seen version N never later finds a change numbered below N (no gaps behind a sync cursor).
_LIST_LOCK = 0x5B10C


async def next_version(session: AsyncSession) -> int:
    await session.execute(select(func.pg_advisory_xact_lock(_LIST_LOCK)))
    return int((await session.execute(select(VERSION_SEQ.next_value()))).scalar_one())


async def live_for_number(session: AsyncSession, number: str) -> Entry | None:
    stmt = select(Entry).where(Entry.number == number, Entry.status.in_(LIVE)).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def live_for_account(session: AsyncSession, institution: str, account: str) -> Entry | None:
    stmt = (
        select(Entry)
        .where(Entry.institution == institution, Entry.account == account, Entry.status.in_(LIVE))
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def first_receipt(session: AsyncSession, message_id: str) -> bool:
    """Record a fraud-receivers message; False if it was taken before."""
    stmt = (
        insert(Receipt).values(message_id=message_id).on_conflict_do_nothing().returning(Receipt.message_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def reported_for(
    session: AsyncSession, institution_id: str, request_id: uuid.UUID
) -> tuple[Report, str | None] | None:
    """The report (and its number) a telecom's request with this idempotency key made, if one did.
    Requests with the same key wait for each other here (a transaction-scoped advisory lock on it), so
    the second sees the first's."""
    lock_key = func.hashtextextended(f"{institution_id}:{request_id}", 0)
    await session.execute(select(func.pg_advisory_xact_lock(lock_key)))
    stmt = (
        select(Report, Entry.number)
        .join(Entry, Entry.id == Report.entry_id)
        .where(Report.institution_id == institution_id, Report.request_id == request_id)
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (row[0], row[1])


async def add(session: AsyncSession, row: Entry | Report | Appeal | Renewal) -> None:
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Two requests for one number (or account) at once: both found no live entry, one made it first.
        if any(f"uq_blocklist_entries_live_{what}" in str(exc.orig) for what in ("number", "account")):
            raise Conflict("a live entry for this number or account was made meanwhile; retry") from exc
        raise


async def add_proposer(session: AsyncSession, entry_id: uuid.UUID, subject: str, at: datetime) -> None:
    """Record `subject` among the entry's proposers (once: a second proposal by them changes nothing)."""
    stmt = insert(Proposer).values(entry_id=entry_id, subject=subject, at=at).on_conflict_do_nothing()
    await session.execute(stmt)


async def is_proposer(session: AsyncSession, entry_id: uuid.UUID, subject: str) -> bool:
    stmt = select(Proposer.subject).where(Proposer.entry_id == entry_id, Proposer.subject == subject)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def get(session: AsyncSession, entry_id: uuid.UUID, *, for_update: bool = False) -> Entry | None:
    stmt = select(Entry).where(Entry.id == entry_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_entries(
    session: AsyncSession, *, status: str | None, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Entry]:
    """Newest first; keyset pagination on (proposed_at, id), so pages stay stable while entries arrive."""
    stmt = select(Entry)
    if status is not None:
        stmt = stmt.where(Entry.status == status)
    if after is not None:
        stmt = stmt.where(
            (Entry.proposed_at < after[0]) | ((Entry.proposed_at == after[0]) & (Entry.id < after[1]))
        )
    stmt = stmt.order_by(Entry.proposed_at.desc(), Entry.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def due_to_expire(session: AsyncSession, *, now: datetime, limit: int) -> list[Entry]:
    stmt = (
        select(Entry)
        .where(Entry.status == "active", Entry.expires_at <= now)
        .order_by(Entry.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())


async def get_appeal(session: AsyncSession, appeal_id: uuid.UUID) -> Appeal | None:
    stmt = select(Appeal).where(Appeal.id == appeal_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def pending_appeal(session: AsyncSession, entry_id: uuid.UUID) -> Appeal | None:
    stmt = select(Appeal).where(Appeal.entry_id == entry_id, Appeal.status == "pending")
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_renewal(session: AsyncSession, renewal_id: uuid.UUID) -> Renewal | None:
    stmt = select(Renewal).where(Renewal.id == renewal_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def pending_renewal(session: AsyncSession, entry_id: uuid.UUID) -> Renewal | None:
    stmt = select(Renewal).where(Renewal.entry_id == entry_id, Renewal.status == "pending")
    return (await session.execute(stmt)).scalar_one_or_none()


async def current_version(session: AsyncSession, *, kind: str) -> int:
    stmt = select(func.max(Entry.version)).where(Entry.kind == kind)
    value = (await session.execute(stmt)).scalar_one()
    return int(value or 0)


PUBLISHED = ("active", "expired", "removed")  # the statuses the feed and the sync carry


async def changes_after(
    session: AsyncSession, *, since: int, limit: int, active_only: bool, kind: str | None = None
) -> list[Entry]:
    """Published changes after `since`, in version order (`active_only`: what is listed now; `kind`:
    numbers or accounts only)."""
    stmt = select(Entry).where(Entry.version > since, Entry.status.in_(PUBLISHED))
    if kind is not None:
        stmt = stmt.where(Entry.kind == kind)
    if active_only:
        stmt = stmt.where(Entry.status == "active")
    return list((await session.execute(stmt.order_by(Entry.version).limit(limit))).scalars())


async def feed_cursor(session: AsyncSession) -> int:
    """The feed's published version, locked: one publisher at a time."""
    stmt = select(FeedCursor.published_version).where(FeedCursor.id == 1).with_for_update()
    value: int = (await session.execute(stmt)).scalar_one()
    return value


async def set_feed_cursor(session: AsyncSession, version: int) -> None:
    await session.execute(update(FeedCursor).where(FeedCursor.id == 1).values(published_version=version))
