"""Scratch databases (the test session's own, the benchmarks', the live check's) are dropped with whatever
still holds them: a session the dropping role may not end is waited for a bounded while, then the drop
fails with PostgreSQL's reason."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import make_url

from deploy.local import postgres
from services.kit import db
from tests import factories as f

pytestmark = pytest.mark.integration


async def test_a_database_held_by_a_session_it_may_not_end_is_dropped_once_that_session_ends(
    infra, monkeypatch
):
    if postgres.running() is None:
        pytest.skip("needs the local stack's superuser")
    server = infra.database_url  # the server is what counts: the new database is made beside it
    name = f"stopline_scratch_{f.unique('d')}".replace("-", "_")
    await db.scratch_database(server, name, create=True)
    at = make_url(server)
    # A superuser's session: FORCE may not end it for the application's role, as an autovacuum worker's.
    held = await asyncpg.connect(host=at.host, port=at.port, user="postgres", database=name, timeout=10)
    monkeypatch.setattr(db, "DROP_ATTEMPTS", 2)  # FORCE, a plain DROP (it waits 5 s), FORCE again
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied to terminate"):
            await db.scratch_database(server, name, create=False)
    finally:
        await held.close()
    await db.scratch_database(server, name, create=False)
    admin = await asyncpg.connect(host=at.host, port=at.port, user="postgres", database="postgres")
    try:
        assert await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
    finally:
        await admin.close()
