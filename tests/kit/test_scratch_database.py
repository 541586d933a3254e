"""Scratch databases (the test session's own, the benchmarks', the live check's) are dropped with whatever
still holds them: a session the dropping role may not end (an autovacuum worker's, or here a superuser's)
is waited for a bounded while; then the drop fails with PostgreSQL's reason."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import URL, make_url

from deploy.local import postgres
from services.kit import db
from tests import factories as f
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration
PLAIN_DROP_WAITING = """
    SELECT count(*) FROM pg_stat_activity
    WHERE state = 'active' AND query = 'DROP DATABASE IF EXISTS "' || $1 || '"'
"""


@pytest.fixture
async def scratch(infra) -> tuple[str, str, URL]:
    """A new database beside the session's (the server is what counts), its name, and the server's URL."""
    if postgres.running() is None:
        pytest.skip("needs the local stack's superuser")
    name = f"stopline_scratch_{f.unique('d')}".replace("-", "_")
    await db.scratch_database(infra.database_url, name, create=True)
    return infra.database_url, name, make_url(infra.database_url)


async def test_a_database_held_by_a_session_it_may_not_end_is_dropped_once_that_session_ends(scratch):
    server, name, at = scratch
    admin = await asyncpg.connect(host=at.host, port=at.port, user="postgres", database="postgres")
    # A superuser's session: FORCE may not end it for the application's role, as an autovacuum worker's.
    held = await asyncpg.connect(host=at.host, port=at.port, user="postgres", database=name)
    try:
        dropping = asyncio.create_task(db.scratch_database(server, name, create=False))
        # FORCE was refused, and the plain DROP waits for the other sessions to end: this one ends now.
        await eventually(lambda: admin.fetchval(PLAIN_DROP_WAITING, name), timeout_s=10, every_s=0.05)
        await held.close()
        await asyncio.wait_for(dropping, 30)
        assert await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
    finally:
        await held.close()
        await admin.close()


async def test_a_session_that_does_not_end_fails_the_drop_with_postgresqls_reason(scratch, monkeypatch):
    server, name, at = scratch
    held = await asyncpg.connect(host=at.host, port=at.port, user="postgres", database=name)
    monkeypatch.setattr(db, "DROP_ATTEMPTS", 1)  # one FORCE refused: the bound reached at once
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied to terminate"):
            await db.scratch_database(server, name, create=False)
    finally:
        await held.close()
    await db.scratch_database(server, name, create=False)
