"""A connection the server closed while it sat in the pool (a restart, an immediate stop, a backend ended)
is replaced before its next use: the next unit of work runs on a new one instead of failing. The pool no
longer asks the server before every use (three round trips with asyncpg): the driver has read the socket's
end, and the pool looks at that."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from tests import locks
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration


async def test_a_connection_the_server_ended_while_pooled_is_replaced_before_use(infra, sessions):
    engine = make_engine(infra.database_url, pool_size=1)
    pooled = make_sessionmaker(engine)
    try:
        async with unit_of_work(pooled) as session:
            first = await locks.backend(session)
            driver = (await (await session.connection()).get_raw_connection()).driver_connection
            assert driver is not None
        async with sessions() as other:
            ended = await other.execute(text("select pg_terminate_backend(:pid)"), {"pid": first})
            assert ended.scalar_one() is True
        await eventually(lambda: driver.is_closed())  # the client has read the end of the socket
        async with unit_of_work(pooled) as session:
            again = await locks.backend(session)
            assert (await session.execute(text("select 1"))).scalar_one() == 1
        assert again != first
    finally:
        await engine.dispose()
