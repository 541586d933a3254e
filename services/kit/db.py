"""Async SQLAlchemy engine, the declarative base with named constraints, and the unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy import MetaData, event, make_url, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


DROP_ATTEMPTS = 3  # each plain DROP waits up to 5 s for the other sessions to end
PING_S = 2.0  # a readiness probe's wait for the database (the probes' own timeouts are a few seconds)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


async def scratch_database(server_url: str, name: str, *, create: bool) -> str:
    """Create (or drop, with its connections) a database on the server of `server_url`; returns the URL
    of that database. For runs that must neither see nor leave data: benchmarks, live checks."""
    dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await _drop(conn, name)
    finally:
        await conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def _drop(conn: asyncpg.Connection, name: str) -> None:
    """FORCE ends the database's other sessions, but refuses ("permission denied to terminate process",
    seen at a test session's end) a session it may not end: an autovacuum worker's (no role: a superuser's
    or pg_signal_autovacuum_worker's to end) or a superuser's. A plain DROP ends autovacuum workers itself,
    waits for them, and fails on any other session: each is tried in turn, a bounded number of times."""
    for attempt in range(DROP_ATTEMPTS):
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except asyncpg.InsufficientPrivilegeError:
            if attempt == DROP_ATTEMPTS - 1:
                raise
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            return
        except asyncpg.ObjectInUseError:
            await asyncio.sleep(0.5)


def make_engine(url: str, *, pool_size: int = 10, statement_timeout_ms: int = 10_000) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=10,
        hide_parameters=True,  # an error's message must not carry a statement's values (phone numbers)
        connect_args={
            "timeout": 10,
            "command_timeout": statement_timeout_ms / 1000,
            "server_settings": {"statement_timeout": str(statement_timeout_ms)},
        },
    )
    event.listen(engine.sync_engine, "checkout", _closed_while_pooled)
    return engine


def _closed_while_pooled(
    dbapi_connection: object, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """A connection the server closed while it sat in the pool (a restart, an immediate stop, a backend
    ended) is replaced before use: SQLAlchemy connects that slot of the pool again. The driver knows it from
    the socket's end, read by the event loop, at no cost; SQLAlchemy's `pool_pre_ping` asked the server
    instead, three round trips with asyncpg (BEGIN, a statement, ROLLBACK) before every unit of work. A
    connection cut without the server's word (a frozen server, a network partition) fails its first
    statement at the statement timeout, each such connection on its own, as a ping would have waited."""
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed the connection while it was pooled")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


BeforeCommit = Callable[[AsyncSession], Awaitable[None]]
_BEFORE_COMMIT = "before_commit_hooks"


def before_commit(session: AsyncSession, hook: BeforeCommit) -> None:
    """Run `hook` as the last statements of this session's unit of work, once, in the order asked
    (e.g. sealing the audit entries an action queued). Nothing runs if the work rolls back."""
    hooks: list[BeforeCommit] = session.info.setdefault(_BEFORE_COMMIT, [])
    if hook not in hooks:
        hooks.append(hook)


AfterCommit = Callable[[], object]
_AFTER_COMMIT = "after_commit_calls"


def after_commit(session: AsyncSession, done: AfterCommit) -> None:
    """Call `done` once this session's unit of work has committed, as often as asked: how a metric counts
    what a work did (`after_commit(session, COUNTER.labels(...).inc)`). A work that rolls back, or fails at
    its commit, counts nothing; a batch handled again after such a failure counts once, not twice."""
    session.info.setdefault(_AFTER_COMMIT, []).append(done)


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """The edge of a piece of work, and the one place it commits: when the block succeeds, its
    before-commit hooks run and then it commits, then its after-commit calls are made; when it raises,
    it rolls back."""
    async with sessions() as session:
        async with session.begin():
            yield session
            hooks: list[BeforeCommit] = session.info.setdefault(_BEFORE_COMMIT, [])
            while hooks:  # a hook may ask for another
                await hooks.pop(0)(session)
        for done in session.info.pop(_AFTER_COMMIT, []):
            done()


async def reach(db: AsyncSession | AsyncConnection) -> None:
    """Ask the database the simplest question: raises what the driver raises if it does not answer."""
    await db.execute(text("select 1"))


async def ping(engine: AsyncEngine) -> str:
    """A readiness check: "ok" if the database answers within PING_S. A frozen server, or a pool whose
    connections are all busy, would hold the probe for the engine's connect or pool timeout, past the
    probe's own; the question then goes on in the background (bounded by those timeouts), not cut off
    mid-statement, which would leave its connection in doubt."""
    asked = asyncio.ensure_future(_select_one(engine))
    try:
        await asyncio.wait_for(asyncio.shield(asked), PING_S)
    except TimeoutError:
        asked.add_done_callback(lambda done: done.cancelled() or done.exception())  # heard, not logged
        return f"error: no answer within {PING_S:g} s"
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        return f"error: {type(exc).__name__}"
    return "ok"


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await reach(conn)


def in_list(values: tuple[str, ...]) -> str:
    """Values as the list of a SQL `in (...)` in a CHECK constraint: the enum's one spelling in Python."""
    return ", ".join(f"'{v}'" for v in values)
