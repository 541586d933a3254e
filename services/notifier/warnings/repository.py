"""SQL of warnings, their alerts and contacts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.warnings.models import CitizenWarning, Contact, WarningAlert, WarningPayment


async def known_alerts(
    session: AsyncSession, alert_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Of these alerts, those received before, with the warning each made or joined."""
    if not alert_ids:
        return {}
    stmt = select(WarningAlert.alert_id, WarningAlert.warning_id).where(WarningAlert.alert_id.in_(alert_ids))
    return {alert_id: warning_id for alert_id, warning_id in (await session.execute(stmt)).all()}


async def by_episode(session: AsyncSession, *, episode: str, person: str) -> CitizenWarning | None:
    stmt = select(CitizenWarning).where(CitizenWarning.episode == episode, CitizenWarning.person == person)
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_open_since(session: AsyncSession, *, person: str, since: datetime) -> CitizenWarning | None:
    """The person's latest warning made since `since` that is still open: neither answered nor closed by
    the desk. Locked, as an answer or the desk's close locks it: one being answered is waited for, and
    PostgreSQL checks the status again once it is committed (then None: the new episode is news)."""
    stmt = (
        select(CitizenWarning)
        .where(
            CitizenWarning.person == person,
            CitizenWarning.created_at >= since,
            CitizenWarning.status == "open",
        )
        .order_by(CitizenWarning.created_at.desc())
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert_warning(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert unless the (episode, person) pair exists; the unique constraint decides. True if new."""
    stmt = (
        insert(CitizenWarning)
        .values(**values)
        .on_conflict_do_nothing(constraint="uq_citizen_warnings_episode_person")
        .returning(CitizenWarning.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def link_alert(
    session: AsyncSession, *, alert_id: uuid.UUID, warning_id: uuid.UUID, joined: str
) -> None:
    stmt = insert(WarningAlert).values(alert_id=alert_id, warning_id=warning_id, joined=joined)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["alert_id"]))


async def add_payments(
    session: AsyncSession, *, warning_id: uuid.UUID, payments: Sequence[dict[str, Any]]
) -> int:
    """Keep payments with the warning, each once by event_ref (a revision lists the earlier ones again);
    how many were new."""
    if not payments:
        return 0
    stmt = (
        insert(WarningPayment)
        .values([{**p, "warning_id": warning_id} for p in payments])
        .on_conflict_do_nothing(index_elements=["warning_id", "event_ref"])
        .returning(WarningPayment.event_ref)
    )
    return len((await session.execute(stmt)).all())


async def grow(session: AsyncSession, warning_id: uuid.UUID) -> None:
    """The warning's amount at risk becomes the sum of its payments, never less than it was (a warning from
    before payments were kept has none for its first alert); its payee, the newest payment's."""
    p, w = WarningPayment, CitizenWarning
    # Locked before the sum: two instances adding payments to one warning (a rebalance) each sum what the
    # other committed first, not only their own.
    await session.execute(select(w.id).where(w.id == warning_id).with_for_update())
    total = (await session.execute(select(func.sum(p.amount)).where(p.warning_id == warning_id))).scalar()
    newest = (
        await session.execute(
            select(p.payee_institution, p.payee_account)
            .where(p.warning_id == warning_id, p.payee_account.is_not(None))
            .order_by(p.occurred_at.desc(), p.event_ref.desc())
            .limit(1)
        )
    ).first()
    values: dict[str, Any] = {}
    if total is not None:
        values["amount_at_risk"] = func.greatest(func.coalesce(w.amount_at_risk, 0), total)
    if newest is not None:
        values["payee_institution"], values["payee_account"] = newest
    if values:
        stmt = update(w).where(w.id == warning_id).values(**values)
        await session.execute(stmt.execution_options(synchronize_session="fetch"))


async def payees(session: AsyncSession, warning_id: uuid.UUID) -> list[tuple[str, str, Decimal, datetime]]:
    """Where the warning's money went: (institution, account, amount, last paid at), the first paid first."""
    p = WarningPayment
    stmt = (
        select(p.payee_institution, p.payee_account, func.sum(p.amount), func.max(p.occurred_at))
        .where(p.warning_id == warning_id, p.payee_account.is_not(None), p.payee_institution.is_not(None))
        .group_by(p.payee_institution, p.payee_account)
        .order_by(func.min(p.occurred_at), p.payee_institution, p.payee_account)
    )
    rows = (await session.execute(stmt)).all()
    return cast(list[tuple[str, str, Decimal, datetime]], list(rows))  # (payee columns not null, as filtered)


async def called(session: AsyncSession, warning_id: uuid.UUID) -> None:
    """The warning's alert is call_then_transfer now (a revision: the call was reported after the
    payment): the desk sees it so."""
    stmt = update(CitizenWarning).where(
        CitizenWarning.id == warning_id, CitizenWarning.typology != "call_then_transfer"
    )
    await session.execute(stmt.values(typology="call_then_transfer"))


async def contact(session: AsyncSession, phone: str) -> Contact | None:
    return await session.get(Contact, phone)


async def upsert_contact(
    session: AsyncSession, *, phone: str, language: str, push_id: str | None, by: str, at: datetime
) -> bool:
    """Set the contact of a number that is `by`'s or no one's (it becomes `by`'s); False if the number
    is another operator's (nothing changed). One statement, so two operators cannot race past the check."""
    values = {
        "phone": phone,
        "operator": by,
        "language": language,
        "push_id": push_id,
        "updated_by": by,
        "updated_at": at,
    }
    stmt = (
        insert(Contact)
        .values(**values)
        .on_conflict_do_update(
            index_elements=["phone"],
            set_={"language": language, "push_id": push_id, "updated_by": by, "updated_at": at},
            where=Contact.operator == by,
        )
        .returning(Contact.phone)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def release_contact(session: AsyncSession, *, phone: str, by: str) -> bool:
    """Forget the contact of `by`'s number (a port-out); False if it is not `by`'s."""
    stmt = delete(Contact).where(Contact.phone == phone, Contact.operator == by).returning(Contact.phone)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def by_token(session: AsyncSession, token_sha256: str) -> CitizenWarning | None:
    """The warning the token belongs to, locked, so two answers with one token cannot both pass."""
    stmt = select(CitizenWarning).where(CitizenWarning.token_sha256 == token_sha256).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get(
    session: AsyncSession, warning_id: uuid.UUID, *, for_update: bool = False
) -> CitizenWarning | None:
    stmt = select(CitizenWarning).where(CitizenWarning.id == warning_id)
    if for_update:  # (and as committed: an object this session loaded before the lock may be stale)
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def event_times(session: AsyncSession, warning_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    if not warning_ids:
        return {}
    rows = await session.execute(
        select(CitizenWarning.id, CitizenWarning.event_time).where(CitizenWarning.id.in_(warning_ids))
    )
    return {r[0]: r[1] for r in rows}


async def mark_delivered(session: AsyncSession, *, warning_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        update(CitizenWarning)
        .where(CitizenWarning.id == warning_id, CitizenWarning.first_delivered_at.is_(None))
        .values(first_delivered_at=at)
    )


async def alert_ids(session: AsyncSession, warning: CitizenWarning) -> list[uuid.UUID]:
    """The warning's alerts, the one that raised it first."""
    stmt = (
        select(WarningAlert.alert_id)
        .where(WarningAlert.warning_id == warning.id, WarningAlert.alert_id != warning.first_alert_id)
        .order_by(WarningAlert.at)
    )
    return [warning.first_alert_id, *(await session.execute(stmt)).scalars()]


async def for_alerts(session: AsyncSession, alert_ids: Sequence[uuid.UUID]) -> list[CitizenWarning]:
    """The warnings these alerts led to or joined, oldest first."""
    stmt = (
        select(CitizenWarning)
        .join(WarningAlert, WarningAlert.warning_id == CitizenWarning.id)
        .where(WarningAlert.alert_id.in_(alert_ids))
        .distinct()
        .order_by(CitizenWarning.created_at)
    )
    return list((await session.execute(stmt)).scalars())


async def summary(session: AsyncSession, *, since: datetime, until: datetime) -> dict[str, int]:
    """Warnings created in the period: how many, delivered, answered (each way), and their outcomes."""
    w = CitizenWarning
    stmt = select(
        func.count(),
        func.count(w.first_delivered_at),
        func.count(w.answered_at),
        func.count().filter(w.answer == "safe"),
        func.count().filter(w.answer == "defrauded"),
        func.count().filter(w.outcome == "dissuaded"),
        func.count().filter(w.outcome == "reached_too_late"),
        func.count().filter(w.outcome == "not_reached"),
    ).where(w.created_at >= since, w.created_at < until)
    row = (await session.execute(stmt)).one()
    names = (
        "warned",
        "delivered",
        "answered",
        "safe",
        "defrauded",
        "dissuaded",
        "reached_too_late",
        "not_reached",
    )
    return dict(zip(names, (int(v) for v in row), strict=True))
