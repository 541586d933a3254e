"""Closing a case states its outcome (confirmed fraud, false alarm, undetermined): required to close,
refused otherwise (by the API, the case service and the database), stored, shown, and recorded in the
audit log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.coordination.cases import repository, service
from services.coordination.cases.schemas import CaseUpdate
from services.kit.auth import Officer
from services.kit.errors import InvalidInput
from tests import factories as f
from tests.conftest import plain_dsn
from tests.coordination.conftest import open_case

pytestmark = pytest.mark.integration


def _fields(response) -> list[str]:
    return [d["field"] for d in response.json()["error"]["details"]]


async def test_closing_requires_an_outcome_and_records_it(coord):
    c = coord.client
    op = f.officer()
    case = await open_case(c, op)
    url = f"/v1/cases/{case}"

    refused = await c.patch(url, json={"status": "closed"}, headers=op)
    assert refused.status_code == 422
    assert _fields(refused) == ["body.outcome"]
    assert "outcome" in refused.json()["error"]["details"][0]["reason"]
    without_closing = await c.patch(
        url, json={"outcome": "false_alarm", "assignee": "officer-wu"}, headers=op
    )
    assert without_closing.status_code == 422 and _fields(without_closing) == ["body.outcome"]
    unknown = await c.patch(url, json={"status": "closed", "outcome": "probably"}, headers=op)
    assert unknown.status_code == 422 and _fields(unknown) == ["body.outcome"]
    still_open = (await c.get(url, headers=op)).json()
    assert still_open["status"] == "open" and still_open["outcome"] is None
    assert (await c.patch(url, json={"assignee": "officer-wu"}, headers=op)).status_code == 200

    closed = await c.patch(url, json={"status": "closed", "outcome": "confirmed_fraud"}, headers=op)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["outcome"] == "confirmed_fraud"
    assert (await c.get(url, headers=op)).json()["outcome"] == "confirmed_fraud"
    listed = (await c.get("/v1/cases", params={"status": "closed"}, headers=op)).json()
    assert {x["outcome"] for x in listed if x["id"] == case} == {"confirmed_fraud"}

    # A closed case is no longer worked on: its outcome is not rewritten.
    rewrite = await c.patch(url, json={"status": "closed", "outcome": "false_alarm"}, headers=op)
    assert rewrite.status_code == 409 and rewrite.json()["error"]["details"] == {"current_status": "closed"}
    assert (await c.get(url, headers=op)).json()["outcome"] == "confirmed_fraud"

    entries = (await c.get("/v1/audit", params={"case_id": case}, headers=f.officer("auditor"))).json()
    updates = [e for e in entries["items"] if e["action"] == "case.updated"]
    closing = [e for e in updates if e["after"]["status"] == "closed"][0]
    assert closing["before"]["status"] == "open" and closing["before"]["outcome"] is None
    assert closing["after"]["outcome"] == "confirmed_fraud"
    assert (await c.get("/v1/audit/verify", headers=f.officer("auditor"))).json()["ok"]


async def test_an_outcome_on_an_open_case_is_refused_and_closing_may_reassign(coord):
    c, op = coord.client, f.officer()
    case = await open_case(c, op)
    url = f"/v1/cases/{case}"
    kept_open = await c.patch(url, json={"status": "open", "outcome": "false_alarm"}, headers=op)
    assert kept_open.status_code == 422 and _fields(kept_open) == ["body.outcome"]
    assert (await c.get(url, headers=op)).json()["outcome"] is None

    closed = await c.patch(
        url, json={"status": "closed", "outcome": "false_alarm", "assignee": "officer-wu"}, headers=op
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["status"], body["outcome"], body["assignee"]) == ("closed", "false_alarm", "officer-wu")
    assert body["closed_at"] is not None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # Built without validation, as code other than the API (a flow, a script) could build it.
        (CaseUpdate.model_construct(status="closed", assignee=None, outcome=None), "states its outcome"),
        (CaseUpdate.model_construct(status=None, assignee=None, outcome="false_alarm"), "only when closing"),
    ],
)
async def test_the_case_service_refuses_an_outcome_without_closing_and_closing_without_one(
    coord, sessions, spec: CaseUpdate, message: str
):
    case_id = uuid.UUID(await open_case(coord.client, f.officer()))
    officer = Officer(subject="officer-li", unit="changji-psb", role="operator")
    async with sessions() as s:
        case = await repository.get(s, case_id)
        assert case is not None
        with pytest.raises(InvalidInput) as refused:
            await service.update(s, case=case, spec=spec, officer=officer, topic_prefix="")
        assert message in refused.value.message
        assert [d["field"] for d in refused.value.details] == ["outcome"]
        assert (case.status, case.outcome) == ("open", None)


@pytest.fixture
async def db(infra) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(plain_dsn(infra.database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_database_refuses_an_unknown_outcome(coord, db):
    case = await open_case(coord.client, f.officer())
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("update cases set outcome = 'maybe' where id = $1::uuid", case)


async def test_the_database_holds_an_outcome_exactly_on_closed_cases(coord, db):
    case = await open_case(coord.client, f.officer())
    with pytest.raises(asyncpg.CheckViolationError) as closing_without:
        await db.execute("update cases set status = 'closed', closed_at = now() where id = $1::uuid", case)
    assert closing_without.value.constraint_name == "ck_cases_outcome_when_closed"
    with pytest.raises(asyncpg.CheckViolationError) as open_with:
        await db.execute("update cases set outcome = 'false_alarm' where id = $1::uuid", case)
    assert open_with.value.constraint_name == "ck_cases_outcome_when_closed"
    await db.execute(
        "update cases set status = 'closed', closed_at = now(), outcome = 'undetermined' where id = $1::uuid",
        case,
    )
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("update cases set outcome = null where id = $1::uuid", case)
    assert await db.fetchval("select outcome from cases where id = $1::uuid", case) == "undetermined"
