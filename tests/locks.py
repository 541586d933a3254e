"""Barriers on PostgreSQL's locks: a test crossing two transactions waits until one waits for the other."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def backend(session: AsyncSession) -> int:
    """The server process of the session's connection (its transaction's, once begun)."""
    return int((await session.execute(text("select pg_backend_pid()"))).scalar_one())


async def blocked_by(sessions: async_sessionmaker[AsyncSession], pid: int) -> bool:
    """Whether a statement waits for a lock the server process `pid` holds."""
    async with sessions() as s:
        stmt = text("select count(*) from pg_stat_activity where :pid = any(pg_blocking_pids(pid))")
        return bool((await s.execute(stmt, {"pid": pid})).scalar_one())


async def waiting_behind(sessions: async_sessionmaker[AsyncSession], pid: int) -> int:
    """How many statements wait for the server process `pid`: for a lock it holds, or behind one that does
    (in a row's queue, the second waits for the first)."""
    async with sessions() as s:
        stmt = text(
            "with direct as (select pid from pg_stat_activity where :pid = any(pg_blocking_pids(pid)))"
            " select count(*) from pg_stat_activity a where a.pid in (select pid from direct)"
            " or pg_blocking_pids(a.pid) && array(select pid from direct)"
        )
        return int((await s.execute(stmt, {"pid": pid})).scalar_one())
