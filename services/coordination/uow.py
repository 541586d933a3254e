"""The coordination service's unit of work: commits on success, rolls back on error, and seals the
action's audit entries into the hash chain as the last statements before the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination.audit import service as audit


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session, session.begin():
        yield session
        await audit.seal(session)
