"""Test fixtures. Integration tests run on the real Kafka and PostgreSQL that `make test` starts:
each test session makes its own database and its own topic prefix, so concurrent runs (and a
`make run` beside them) never see each other's data. `make test` runs two sessions at once, one in each
of pytest-xdist's worker processes, each given whole files of tests."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.db import make_engine, make_sessionmaker, scratch_database
from services.kit.settings import CommonSettings
from streams.acls import ADMIN
from streams.connection import KafkaConnection, connection

if TYPE_CHECKING:
    from services.scorer.main import Scorer

RUN_ID = uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class Infra:
    common: CommonSettings
    database_url: str
    prefix: str
    kafka: KafkaConnection  # the administrator: tests' own tools read and write any topic


def plain_dsn(url: str) -> str:
    """A SQLAlchemy URL as asyncpg takes it (no driver name)."""
    u = make_url(url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """A fresh database (migrated) and topic prefix for this session; dropped at the end."""
    from services.migrate import upgrade
    from streams.admin import delete_topics, ensure_topics

    base = CommonSettings()
    kafka = connection(base, ADMIN)
    db_name = f"stopline_test_{RUN_ID}"
    prefix = f"test-{RUN_ID}-"

    async def create() -> str:
        url = await scratch_database(base.database_url, db_name, create=True)
        await ensure_topics(kafka, prefix)
        return url

    test_url = asyncio.run(create())
    upgrade(test_url)
    os.environ["DATABASE_URL"] = test_url
    os.environ["STOPLINE_TOPIC_PREFIX"] = prefix
    # The apps of a session serve every test from one client address, and many tests send wrong
    # credentials on purpose: the failed-authentication limit (tests/kit/test_rate_limits.py) would soon
    # answer them all 429.
    os.environ["STOPLINE_RATE_AUTH_FAILURES_PER_MIN"] = "1000000"
    # The apps' schedulers check the audit chain at start, and then as the tests that tamper with it say
    # (`AuditCheck.once`), not at a tick of their own in the middle of a tampering.
    os.environ["STOPLINE_COORDINATION_AUDIT_TAIL_INTERVAL_S"] = "86400"
    common = CommonSettings()
    assert common.topic_prefix == prefix
    yield Infra(common=common, database_url=test_url, prefix=prefix, kafka=kafka)

    async def drop() -> None:
        await delete_topics(kafka, prefix)
        await scratch_database(base.database_url, db_name, create=False)

    asyncio.run(drop())


@pytest.fixture(scope="session")
def short_login_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaConnection]:
    """A Kafka node of the session's own whose connections must log in again every few seconds
    (tests.kafka_tools.short_login_kafka): its administrator. Started at its first use."""
    from tests.kafka_tools import short_login_kafka as running

    with running(tmp_path_factory.mktemp("short-login")) as kafka:
        yield kafka


@pytest.fixture
def unreachable_kafka(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> CommonSettings:
    """The session's settings (its database and topic prefix, from the environment infra set) with a broker
    port nobody serves: a service built with them meets Kafka away."""
    from deploy.local.common import free_port

    monkeypatch.delenv("STOPLINE_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("STOPLINE_KAFKA_PORT", str(free_port()))
    common = CommonSettings()
    assert common.database_url == infra.common.database_url and common.topic_prefix == infra.prefix
    return common


@pytest.fixture(scope="session")
async def sessions(infra: Infra) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(infra.database_url, pool_size=5)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
async def ingest(infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    """The ingest API in-process (its lifespan runs: real producer, real database)."""
    from services.ingest.app import build

    app = build(infra.common)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest", timeout=30) as client:
            yield client


@pytest.fixture(scope="session")
async def scorer(infra: Infra) -> AsyncIterator[Scorer]:
    """The scorer's two stages consuming the session's topics."""
    from services.scorer.main import Scorer
    from services.scorer.settings import ScorerSettings

    # Tests send a few minutes of events to a fresh state: no warm-up gate (tested on its own).
    instance = Scorer(infra.common, ScorerSettings(model_warmup_hours=0))
    await instance.start()
    await asyncio.wait_for(asyncio.gather(*(r.started.wait() for r in instance.runners)), 30)
    yield instance
    await instance.stop()


@pytest.fixture(scope="session")
async def coordination(infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    """The coordination API in-process, with its alerts consumer running."""
    from services.coordination.app import build
    from streams import groups, topics
    from tests.kafka_tools import drained

    app = build(infra.common)
    async with app.router.lifespan_context(app):
        # The alerts the session's tests wrote before it started are stored first: a test that counts its
        # alerts in the metrics meets none of theirs.
        alerts = topics.name(topics.ALERTS, infra.prefix)
        await drained(infra.kafka, (f"{infra.prefix}{groups.COORDINATION_ALERTS}", [alerts]), timeout_s=60)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://coordination", timeout=30
        ) as client:
            yield client


@pytest.fixture(scope="session")
async def blocklist(infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    """The blocklist service in-process with its feed and expiry running; one for the whole session, so
    no second feed of the same transactional id fences it between two tests."""
    from tests.blocklist.conftest import blocklist_client

    async with blocklist_client(infra)() as client:
        yield client


@pytest.fixture(scope="session")
async def coord(infra: Infra) -> AsyncIterator[Any]:
    """The coordination app (tests/coordination/conftest.py `App`) shared by the coordination and
    banksim tests: consumers, relay and scheduler on, short scheduler and retry intervals."""
    from tests.coordination.conftest import running

    async with running(infra) as app:
        yield app
