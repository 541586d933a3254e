"""The timed job of the notifier: hands undelivered and unanswered warnings to the phone desk."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.db import unit_of_work
from services.kit.logging import log_fields
from services.kit.periodic import PeriodicJob
from services.notifier.desk import service as desk
from services.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)


class Escalator(PeriodicJob):
    name = "warning escalation"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: NotifierSettings) -> None:
        super().__init__(interval_s=settings.escalation_interval_s)
        self.sessions = sessions
        self.settings = settings

    async def once(self) -> int:
        async with unit_of_work(self.sessions) as session:
            n = await desk.escalate(
                session, now=datetime.now(UTC), answer_timeout_s=self.settings.answer_timeout_s
            )
        if n:
            log.info("warnings handed to the phone desk", extra=log_fields(n=n))
        return n
