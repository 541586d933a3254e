"""The timed job that takes expired numbers off the list."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.blocklist import service
from services.coordination.uow import unit_of_work

log = logging.getLogger(__name__)


class Expiry:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, interval_s: float, on_change: Callable[[], None]
    ) -> None:
        self.sessions = sessions
        self.interval_s = interval_s
        self.on_change = on_change
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.once()
            except Exception:  # noqa: BLE001 - nothing is lost: the next run finds the same entries
                log.exception("blocklist expiry failed; retrying")
            try:
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
            except TimeoutError:
                pass

    async def once(self) -> int:
        async with unit_of_work(self.sessions) as session:
            n = await service.expire_due(session, now=datetime.now(UTC))
        if n:
            self.on_change()
        return n
