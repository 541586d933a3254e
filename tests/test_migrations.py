"""The migrations: on an empty database they build exactly the schema the ORM models declare, and the
newest coordination revision goes down and up again cleanly, giving cases closed before it an outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, inspect
from sqlalchemy.engine import Connection

from services.kit.db import make_engine, scratch_database
from services.kit.settings import CommonSettings
from services.migrate import alembic_config, in_thread, target_metadata, upgrade
from tests.conftest import plain_dsn

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_database() -> Iterator[str]:
    base = CommonSettings().database_url
    name = f"stopline_migrations_{uuid.uuid4().hex[:10]}"

    url = asyncio.run(scratch_database(base, name, create=True))
    try:
        yield url
    finally:
        asyncio.run(scratch_database(base, name, create=False))


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


@dataclass
class Schema:
    """What one look at a database finds (one connection, not one per question)."""

    drift: list[Any]  # differences from the models
    checks: set[tuple[str, str]]  # (table, CHECK constraint name)
    tables: set[str]
    columns: dict[str, set[str]]  # of the alerts and cases tables

    def cases_checks(self) -> set[str]:
        return {name for table, name in self.checks if table == "cases"}


def _schema(url: str) -> Schema:
    def look(conn: Connection) -> Schema:
        db = inspect(conn)
        tables = set(db.get_table_names())
        return Schema(
            drift=_drift(conn),
            checks={(t, str(c["name"])) for t in tables for c in db.get_check_constraints(t)},
            tables=tables,
            columns={t: {c["name"] for c in db.get_columns(t)} for t in ("alerts", "cases")},
        )

    return _inspect(url, look)


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
    up = _schema(url)
    assert up.drift == []
    assert up.checks == _model_checks()
    assert {"features", "feature_set"} <= up.columns["alerts"]
    assert "outcome" in up.columns["cases"] and OUTCOME_CHECKS <= up.cases_checks()

    in_thread(lambda: command.downgrade(alembic_config(url), "0002_coordination"))
    down = _schema(url)
    assert not {"features", "feature_set"} & down.columns["alerts"]
    assert "outcome" not in down.columns["cases"] and not OUTCOME_CHECKS & down.cases_checks()
    assert "citizen_warnings" in down.tables
    # Cases of before the revision: one still open, one closed without an outcome.
    asyncio.run(_sql(url, _OLD_CASE.format(n="CJ-old-open", status="open", closed_at="null")))
    asyncio.run(_sql(url, _OLD_CASE.format(n="CJ-old-closed", status="closed", closed_at="now()")))

    upgrade(url)
    again = _schema(url)
    assert again.drift == []
    assert "outcome" in again.columns["cases"] and OUTCOME_CHECKS <= again.cases_checks()
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


def test_the_transfer_ref_revision_names_the_source_account_of_the_transfers_recorded_before(
    empty_database: str,
) -> None:
    url = empty_database
    in_thread(lambda: command.upgrade(alembic_config(url), "0013_audit_entity_id"))
    case = "(select id from cases where case_number = 'CJ-flow')"
    statements = [
        _OLD_CASE.format(n="CJ-flow", status="open", closed_at="null"),
        "insert into flow_accounts (case_id, institution_id, account, depth) values"
        f" ({case}, 'bank-a', 'MULE1', 0), ({case}, 'bank-b', 'HOP1', 1)",
        "insert into flow_transfers (case_id, ref, from_account_id, to_account_id, amount, at) values"
        f" ({case}, 'report:0', null, (select min(id) from flow_accounts), 5000, now()),"
        f" ({case}, 'bank-a:0001', (select min(id) from flow_accounts), (select max(id) from flow_accounts),"
        " 4000, now())",
    ]
    for sql in statements:
        asyncio.run(_sql(url, sql))
    refs = "select ref from flow_transfers order by id"

    upgrade(url)
    assert asyncio.run(_sql(url, refs)) == [("report:0",), ("bank-a:MULE1:0001",)]
    in_thread(lambda: command.downgrade(alembic_config(url), "0013_audit_entity_id"))
    assert asyncio.run(_sql(url, refs)) == [("report:0",), ("bank-a:0001",)]
