"""PostgreSQL out of reach, or there but starting up (replaying its log after a crash: it refuses every
connection with SQLSTATE 57P03): every API answers 503 with Retry-After (retryable), never a 500."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy.exc

from services.blocklist.settings import BlocklistSettings
from services.coordination.settings import CoordinationSettings
from services.ingest.settings import IngestSettings
from services.kit import db, outages
from services.notifier.settings import NotifierSettings
from tests import factories as f
from tests.conftest import Infra
from tests.metrics import sample

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on leaving: nothing listens there


async def _starting_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """What PostgreSQL answers while it starts up: no to encryption, then FATAL 57P03 to the login."""
    try:
        while True:
            length = int.from_bytes(await reader.readexactly(4), "big")
            body = await reader.readexactly(length - 4)
            if int.from_bytes(body[:4], "big") not in (80877103, 80877104):  # SSL, GSS encryption requests
                break
            writer.write(b"N")
        fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
        writer.write(b"E" + (len(fields) + 4).to_bytes(4, "big") + fields)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture(params=["not listening", "starting up"])
async def unreachable(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A database URL whose server is down, or up but not accepting connections yet."""
    if request.param == "not listening":
        yield f"postgresql+asyncpg://stopline@127.0.0.1:{_closed_port()}/stopline"
        return
    server = await asyncio.start_server(_starting_up, "127.0.0.1", 0)
    try:
        yield f"postgresql+asyncpg://stopline@127.0.0.1:{server.sockets[0].getsockname()[1]}/stopline"
    finally:
        server.close()
        await server.wait_closed()


def _ingest(common: Any) -> Any:
    from services.ingest.app import build

    return build(common, IngestSettings(intake=False))


def _coordination(common: Any) -> Any:
    from services.coordination.app import build

    # With its relay and scheduler: coordination starts, and answers, while the database is away.
    return build(common, CoordinationSettings(consume=False))


def _notifier(common: Any) -> Any:
    from services.notifier.app import build

    return build(common, NotifierSettings(consume=False))


def _blocklist(common: Any) -> Any:
    from services.blocklist.app import build

    return build(common, BlocklistSettings(background=False))


CASES: list[tuple[Callable[[Any], Any], str, str, dict[str, str]]] = [
    (_ingest, "POST", "/v1/events", {"Authorization": "Bearer slk_0123456789ab.secret"}),
    (_coordination, "GET", "/v1/alerts", f.officer()),
    (_notifier, "GET", "/v1/desk/tasks", f.officer()),
    (_blocklist, "GET", "/v1/blocklist/entries", f.officer()),
]


@pytest.mark.parametrize(("build", "method", "path", "headers"), CASES)
async def test_an_api_without_its_database_answers_503_with_retry_after(
    infra: Infra,
    unreachable: str,
    build: Callable[[Any], Any],
    method: str,
    path: str,
    headers: dict[str, str],
):
    app = build(infra.common.model_copy(update={"database_url": unreachable}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=30) as client:
            body = (
                {"events": [f.call(f.phone(), start=f.minutes_ago(1), minutes=1)]}
                if method == "POST"
                else None
            )
            answer = await client.request(method, path, headers=headers, json=body)
            ready = await client.get("/health/ready")
            ready_gauge = await sample(client, "stopline_ready")
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    # Not ready, and the readiness gauge (what the alert rules read) says so.
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error")
    assert ready_gauge == 0


@pytest.mark.parametrize(
    "orig",
    [
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    ],
)
def test_a_deadlock_a_statement_past_its_timeout_or_a_server_that_cannot_write_now_is_retryable(
    orig: Exception,
):
    """What the APIs answer 503 for and the consumers retry: the same work succeeds when tried again (also
    on a server out of connections, or a standby that a failover has yet to promote)."""
    assert outages.database_down(sqlalchemy.exc.DBAPIError("SELECT 1", None, orig))


async def test_a_write_refused_as_by_a_standby_is_retryable_as_sqlalchemy_raises_it(infra: Infra):
    """Through SQLAlchemy's own wrapping (its driver adapter's error, the driver's as its cause): a write
    in a read-only transaction is refused as a standby refuses every write."""
    engine = db.make_engine(infra.database_url)
    try:
        with pytest.raises(sqlalchemy.exc.DBAPIError) as refused:
            async with engine.begin() as conn:
                await conn.execute(sqlalchemy.text("SET TRANSACTION READ ONLY"))
                await conn.execute(sqlalchemy.text("CREATE TEMPORARY TABLE t (x int)"))
    finally:
        await engine.dispose()
    assert outages.unavailable(refused.value)


def test_a_broken_invariant_stays_a_bug():
    assert not outages.database_down(
        sqlalchemy.exc.DBAPIError("INSERT", None, asyncpg.UniqueViolationError("dup"))
    )


async def test_readiness_answers_in_time_when_the_database_says_nothing(monkeypatch):
    """A frozen PostgreSQL takes the connection and answers nothing: the readiness check says so within its
    bound instead of holding the probe for the engine's 10 s connect timeout (past the probe's own)."""
    monkeypatch.setattr(db, "PING_S", 0.3)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    engine = db.make_engine(f"postgresql+asyncpg://stopline@127.0.0.1:{server.sockets[0].getsockname()[1]}/x")
    try:
        async with asyncio.timeout(5):  # the engine's own connect timeout is 10 s
            assert await db.ping(engine) == "error: no answer within 0.3 s"
    finally:
        await engine.dispose()
        server.close()
        await server.wait_closed()
