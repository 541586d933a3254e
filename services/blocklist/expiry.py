"""The timed job that takes expired numbers off the list."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.blocklist import service
from services.kit.db import unit_of_work
from services.kit.periodic import PeriodicJob

log = logging.getLogger(__name__)


class Expiry(PeriodicJob):
    name = "blocklist expiry"

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, interval_s: float, on_change: Callable[[], None]
    ) -> None:
        super().__init__(interval_s=interval_s)
        self.sessions = sessions
        self.on_change = on_change

    async def once(self) -> int:
        async with unit_of_work(self.sessions) as session:
            n = await service.expire_due(session, now=datetime.now(UTC))
        if n:
            self.on_change()
        return n
