"""The timed job of the notifier: hands undelivered and unanswered warnings to the phone desk."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.db import unit_of_work
from services.kit.logging import log_fields
from services.notifier.desk import service as desk
from services.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)


class Escalator:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: NotifierSettings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.once()
            except Exception:  # noqa: BLE001 - nothing is lost: the next run finds the same warnings
                log.exception("escalation run failed; retrying")
            try:
                await asyncio.wait_for(self._stopping.wait(), self.settings.escalation_interval_s)
            except TimeoutError:
                pass

    async def once(self) -> int:
        async with unit_of_work(self.sessions) as session:
            n = await desk.escalate(
                session, now=datetime.now(UTC), answer_timeout_s=self.settings.answer_timeout_s
            )
        if n:
            log.info("warnings handed to the phone desk", extra=log_fields(n=n))
        return n
