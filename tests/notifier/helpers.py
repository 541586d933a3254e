"""Queries the notifier tests use to look at what happened."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from deploy.local.gateway import Receiver
from services.notifier.delivery.models import Delivery
from services.notifier.desk.models import DeskTask
from services.notifier.warnings.models import CitizenWarning, WarningAlert

Sessions = async_sessionmaker[AsyncSession]


async def warnings_for(sessions: Sessions, phone: str) -> list[CitizenWarning]:
    async with sessions() as s:
        return list((await s.execute(select(CitizenWarning).where(CitizenWarning.phone == phone))).scalars())


async def deliveries_for(sessions: Sessions, phone: str) -> list[Delivery]:
    async with sessions() as s:
        stmt = (
            select(Delivery)
            .join(CitizenWarning, CitizenWarning.id == Delivery.warning_id)
            .where(CitizenWarning.phone == phone)
            .order_by(Delivery.channel)
        )
        return list((await s.execute(stmt)).scalars())


async def desk_task_for(sessions: Sessions, phone: str) -> DeskTask | None:
    """The desk task of a person warned once."""
    tasks = await desk_tasks_for(sessions, phone)
    assert len(tasks) <= 1, tasks
    return tasks[0] if tasks else None


async def desk_tasks_for(sessions: Sessions, phone: str) -> list[DeskTask]:
    """The person's desk tasks, one per warning, oldest warning first."""
    async with sessions() as s:
        stmt = (
            select(DeskTask)
            .join(CitizenWarning, CitizenWarning.id == DeskTask.warning_id)
            .where(CitizenWarning.phone == phone)
            .order_by(CitizenWarning.created_at)
        )
        return list((await s.execute(stmt)).scalars())


async def desk_closes(
    client: httpx.AsyncClient, task_id: uuid.UUID, headers: dict[str, str], **close: object
) -> None:
    """A desk officer takes the call and closes it with `close` (outcome, defrauded, note)."""
    taken = await client.post(f"/v1/desk/tasks/{task_id}/take", headers=headers)
    assert taken.status_code == 200, taken.text
    closed = await client.post(f"/v1/desk/tasks/{task_id}/close", json=close, headers=headers)
    assert closed.status_code == 200, closed.text


async def alerts_joined(sessions: Sessions, phone: str) -> list[WarningAlert]:
    async with sessions() as s:
        stmt = (
            select(WarningAlert)
            .join(CitizenWarning, CitizenWarning.id == WarningAlert.warning_id)
            .where(CitizenWarning.phone == phone)
        )
        return list((await s.execute(stmt)).scalars())


def messages_to(receiver: Receiver, phone: str) -> list[dict[str, object]]:
    return [m.payload for m in receiver.messages.values() if m.payload.get("to") == phone]


def token_in(text: str) -> str:
    match = re.search(r"/a/([A-Za-z0-9_-]+)", text)
    assert match, text
    return match.group(1)
