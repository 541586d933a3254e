"""A job that runs every few seconds until stopped, or at once when woken: expiries, escalations,
delivery rounds, feeds."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from services.kit import outages

log = logging.getLogger(__name__)


class PeriodicJob:
    """Subclasses implement `once`. A failed run is logged and retried at the next tick, which is
    safe only for jobs whose next run finds the same work again (they select what is due)."""

    name = "periodic job"

    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New work is there: run now instead of at the next tick."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def once(self) -> Any:
        raise NotImplementedError

    def more_work(self, result: Any) -> bool:
        """Whether `once`'s result says work is left over (a full batch): then run again at once."""
        return False

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                more = self.more_work(await self.once())
            except Exception as exc:  # noqa: BLE001 - nothing is lost: the next run finds the same work
                outages.log_failure(log, exc, f"{self.name} failed; retrying at the next tick")
                more = False
            if not more:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.interval_s)
                except TimeoutError:
                    pass
