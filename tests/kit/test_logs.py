"""No personal data in logs: a failed statement's values appear neither in a service's log (SQLAlchemy's
parameters, asyncpg's DETAIL) nor in PostgreSQL's own log."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from deploy.local import postgres
from services.kit.logging import JsonFormatter
from tests import factories as f
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration


def _pg_log_size() -> int:
    return postgres.SERVER_LOG.stat().st_size if postgres.SERVER_LOG.exists() else 0


def _pg_log_since(offset: int) -> str:
    with postgres.SERVER_LOG.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


async def test_a_failed_statement_leaves_no_value_in_any_log(sessions: async_sessionmaker[AsyncSession]):
    phone, account = f.phone(), f.account("6222")
    table = f.unique("people").replace("-", "_").lower()
    pg_log_at = _pg_log_size()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tests.kit.logs")
    log.addHandler(handler)
    try:
        async with sessions() as session:
            await session.execute(text(f"create temp table {table} (phone text primary key, account text)"))
            insert = text(f"insert into {table} values (:phone, :account)")
            await session.execute(insert, {"phone": phone, "account": account})
            with pytest.raises(IntegrityError) as failed:
                await session.execute(insert, {"phone": phone, "account": account})
            log.error("insert failed", exc_info=failed.value)
    finally:
        log.removeHandler(handler)

    logged = out.getvalue()
    assert "UniqueViolationError" in logged and "sqlstate=23505" in logged and f"{table}_pkey" in logged
    assert phone not in logged and account not in logged
    if postgres.running() is None:
        pytest.skip("PostgreSQL's log is not the local stack's")
    # The server has logged the error (its constraint's name), with neither value.
    await eventually(lambda: f"{table}_pkey" in _pg_log_since(pg_log_at), timeout_s=10)
    server = _pg_log_since(pg_log_at)
    assert phone not in server and account not in server
