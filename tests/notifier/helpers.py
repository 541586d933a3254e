"""Queries the notifier tests use to look at what happened."""

from __future__ import annotations

import re

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
    async with sessions() as s:
        stmt = (
            select(DeskTask)
            .join(CitizenWarning, CitizenWarning.id == DeskTask.warning_id)
            .where(CitizenWarning.phone == phone)
        )
        return (await s.execute(stmt)).scalar_one_or_none()


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
