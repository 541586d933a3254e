"""A job that runs every few seconds until stopped: deadlines, expiries, escalations."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


class PeriodicJob:
    """Subclasses implement `once`. A failed run is logged and retried at the next tick, which is
    safe only for jobs whose next run finds the same work again (they select what is due)."""

    name = "periodic job"

    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def once(self) -> Any:
        raise NotImplementedError

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.once()
            except Exception:  # noqa: BLE001 - nothing is lost: the next run finds the same work
                log.exception("%s failed; retrying at the next tick", self.name)
            try:
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
            except TimeoutError:
                pass
