"""Which institution ids name Stopline's institutions, for ingest to count the events whose payee
institution names none (a payee bank outside Stopline is legitimate; a member named by a bank's own code
is a mistake that hides the payee account from its bank's reports). An id found is kept (an institution is
never deleted); an id not found is asked again only after `unknown_ttl_s`, so a new member is seen within
it, and a bank's own codes cost one query per batch of them a minute, never one per event."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.institutions.models import Institution

UNKNOWN_MAX = 10_000  # ids remembered as unknown at most (the oldest forgotten first)


class Directory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, unknown_ttl_s: float = 60.0) -> None:
        self.sessions = sessions
        self.unknown_ttl_s = unknown_ttl_s
        self._known: set[str] = set()
        self._unknown: OrderedDict[str, float] = OrderedDict()  # id → until when it is known unknown
        self.lookups = 0

    async def unknown(self, ids: Iterable[str]) -> set[str]:
        """Those of `ids` that name no institution."""
        ids = set(ids)
        now = time.monotonic()
        ask = {i for i in ids - self._known if self._unknown.get(i, 0.0) <= now}
        if ask:
            self.lookups += 1
            async with self.sessions() as session:
                found = set(
                    (await session.scalars(select(Institution.id).where(Institution.id.in_(ask)))).all()
                )
            self._known |= found
            for i in ask - found:
                self._unknown.pop(i, None)
                self._unknown[i] = now + self.unknown_ttl_s
            while len(self._unknown) > UNKNOWN_MAX:
                self._unknown.popitem(last=False)
        return ids - self._known
