"""SQL of the phone-desk queue, including the escalation queries that fill it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, exists, func, literal, not_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.delivery.models import Delivery
from services.notifier.desk.models import DeskTask
from services.notifier.warnings.models import CitizenWarning


# The lock order of the notifier: a warning's row, then its desk task's. A citizen's answer holds the
# warning when it raises the call back; the desk's close would otherwise hold the task when it closes the
# warning, and the two, each waiting for the other, end in a deadlock. So a task is locked, or inserted
# (whose foreign key share-locks the warning), only under its warning's lock, taken here.
async def lock_warning(session: AsyncSession, warning_id: uuid.UUID) -> None:
    await session.execute(select(CitizenWarning.id).where(CitizenWarning.id == warning_id).with_for_update())


async def open_task(session: AsyncSession, *, warning_id: uuid.UUID, reason: str, priority: float) -> bool:
    """One task per warning (unique): a second reason for the same person does not queue a second call."""
    await lock_warning(session, warning_id)
    stmt = (
        insert(DeskTask)
        .values(id=uuid.uuid4(), warning_id=warning_id, reason=reason, priority=priority, status="open")
        .on_conflict_do_nothing(index_elements=["warning_id"])
        .returning(DeskTask.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


def _no_task() -> object:
    return not_(exists().where(DeskTask.warning_id == CitizenWarning.id))


async def escalate_undelivered(session: AsyncSession, *, limit: int) -> int:
    """Open warnings whose every message is dead or failed go to the desk."""
    live = exists().where(
        and_(Delivery.warning_id == CitizenWarning.id, Delivery.status.not_in(("dead", "failed")))
    )
    return await _escalate(session, reason="undelivered", where=[not_(live)], limit=limit)


async def escalate_unanswered(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Open warnings not answered by `before` go to the desk."""
    return await _escalate(
        session, reason="unanswered", where=[CitizenWarning.created_at < before], limit=limit
    )


async def _escalate(session: AsyncSession, *, reason: str, where: list[object], limit: int) -> int:
    picked = (
        select(
            func.gen_random_uuid(),
            CitizenWarning.id,
            literal(reason),
            CitizenWarning.score,
            literal("open"),
        )
        .where(CitizenWarning.status == "open", _no_task(), *where)  # type: ignore[arg-type]
        .order_by(CitizenWarning.created_at)
        .limit(limit)
        .with_for_update(
            skip_locked=True
        )  # (one being answered is skipped: it is not open by the next round)
    )
    stmt = (
        insert(DeskTask)
        .from_select(["id", "warning_id", "reason", "priority", "status"], picked)
        .on_conflict_do_nothing(index_elements=["warning_id"])
        .returning(DeskTask.id)
    )
    return len((await session.execute(stmt)).all())


async def page(session: AsyncSession, *, status: str, limit: int) -> list[tuple[DeskTask, CitizenWarning]]:
    """Riskiest first, then oldest."""
    stmt = (
        select(DeskTask, CitizenWarning)
        .join(CitizenWarning, CitizenWarning.id == DeskTask.warning_id)
        .where(DeskTask.status == status)
        .order_by(DeskTask.priority.desc(), DeskTask.created_at)
        .limit(limit)
    )
    return [(t, w) for t, w in (await session.execute(stmt)).all()]


async def get(session: AsyncSession, task_id: uuid.UUID, *, for_update: bool = False) -> DeskTask | None:
    """The task; locked, after its warning (a task's warning never changes, so it is read unlocked)."""
    if not for_update:
        return (await session.execute(select(DeskTask).where(DeskTask.id == task_id))).scalar_one_or_none()
    warning_id = (
        await session.execute(select(DeskTask.warning_id).where(DeskTask.id == task_id))
    ).scalar_one_or_none()
    return None if warning_id is None else await for_warning(session, warning_id, for_update=True)


async def for_warning(
    session: AsyncSession, warning_id: uuid.UUID, *, for_update: bool = False
) -> DeskTask | None:
    """The warning's task; locked, after the warning."""
    stmt = select(DeskTask).where(DeskTask.warning_id == warning_id)
    if for_update:
        await lock_warning(session, warning_id)
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()
