"""Closing a case states its outcome (confirmed fraud, false alarm, undetermined): required to close,
refused otherwise, stored, shown, and recorded in the audit log."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests import factories as f
from tests.coordination.conftest import open_case

pytestmark = pytest.mark.integration


def _fields(response) -> list[str]:  # type: ignore[no-untyped-def]
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


async def test_the_database_refuses_an_unknown_outcome(infra, coord):
    case = await open_case(coord.client, f.officer())
    dsn = make_url(infra.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("update cases set outcome = 'maybe' where id = $1::uuid", case)
    finally:
        await conn.close()
