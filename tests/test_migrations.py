"""The migrations: on an empty database they build exactly the schema the ORM models declare, and the
newest coordination revision goes down and up again cleanly, giving cases closed before it an outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, inspect
from sqlalchemy.engine import Connection, make_url

from services.kit.db import make_engine
from services.kit.settings import CommonSettings
from services.migrate import alembic_config, in_thread, target_metadata, upgrade
from tests.conftest import plain_dsn

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_database() -> Iterator[str]:
    base = CommonSettings().database_url
    name = f"stopline_migrations_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(plain_dsn(base), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _inspect(url: str, look: Callable[[Connection], Any]) -> Any:
    async def go() -> Any:
        engine = make_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(look)
        finally:
            await engine.dispose()

    return in_thread(lambda: asyncio.run(go()))


def _drift(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, target_metadata))


def _columns(table: str) -> Callable[[Connection], set[str]]:
    return lambda conn: {c["name"] for c in inspect(conn).get_columns(table)}


def _checks(conn: Connection) -> set[str]:
    return {str(c["name"]) for c in inspect(conn).get_check_constraints("cases")}


def _all_checks(conn: Connection) -> set[tuple[str, str]]:
    look = inspect(conn)
    return {(t, str(c["name"])) for t in look.get_table_names() for c in look.get_check_constraints(t)}


def _model_checks() -> set[tuple[str, str]]:
    # compare_metadata does not compare CHECK constraints: the names at least must agree.
    return {
        (t.name, str(c.name))
        for t in target_metadata.tables.values()
        for c in t.constraints
        if isinstance(c, CheckConstraint)
    }


OUTCOME_CHECKS = {"ck_cases_outcome", "ck_cases_outcome_when_closed"}


def test_migrations_match_the_models_and_the_feedback_revision_goes_down_and_up(empty_database: str) -> None:
    url = empty_database
    upgrade(url)
    assert _inspect(url, _drift) == []
    assert _inspect(url, _all_checks) == _model_checks()
    assert {"features", "feature_set"} <= _inspect(url, _columns("alerts"))
    assert "outcome" in _inspect(url, _columns("cases")) and OUTCOME_CHECKS <= _inspect(url, _checks)

    in_thread(lambda: command.downgrade(alembic_config(url), "0002_coordination"))
    assert not {"features", "feature_set"} & _inspect(url, _columns("alerts"))
    assert "outcome" not in _inspect(url, _columns("cases")) and not OUTCOME_CHECKS & _inspect(url, _checks)
    assert "citizen_warnings" in _inspect(url, lambda conn: set(inspect(conn).get_table_names()))
    # Cases of before the revision: one still open, one closed without an outcome.
    asyncio.run(_sql(url, _OLD_CASE.format(n="CJ-old-open", status="open", closed_at="null")))
    asyncio.run(_sql(url, _OLD_CASE.format(n="CJ-old-closed", status="closed", closed_at="now()")))

    upgrade(url)
    assert _inspect(url, _drift) == []
    assert "outcome" in _inspect(url, _columns("cases")) and OUTCOME_CHECKS <= _inspect(url, _checks)
    outcomes = asyncio.run(_sql(url, "select case_number, outcome from cases order by case_number"))
    assert outcomes == [("CJ-old-closed", "undetermined"), ("CJ-old-open", None)]


_OLD_CASE = (
    "insert into cases (id, case_number, unit, status, source, title, opened_by, amount_lost, lost_at, "
    "closed_at) values (gen_random_uuid(), '{n}', 'changji-psb', '{status}', 'report', 'old case', "
    "'officer-7', 1000, now(), {closed_at})"
)


async def _sql(url: str, sql: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(plain_dsn(url), timeout=10)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()
