"""The audit log: append-only in the database, hash-chained, and a changed or deleted row is named by
the API and by `python -m services.coordination.audit verify`."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import pytest

from services.coordination.alerts import service as alerts
from services.coordination.audit.check import AuditCheck
from services.kit.db import unit_of_work
from tests import factories as f
from tests.conftest import plain_dsn
from tests.coordination.conftest import bank, issue, open_case
from tests.metrics import sample

pytestmark = pytest.mark.integration


async def _cli(database_url: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.coordination.audit",
        "verify",
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    return proc.returncode or 0, err.decode()


async def test_tampering_is_detected_and_named(infra, coord, sessions):
    auditor = f.officer("auditor")
    op = f.officer()
    inst, _, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(coord.client, op, (inst, account, "2500.00"))
    stop = await issue(
        coord.client, op, case_id, kind="stop_payment", institution_id=inst, account=account, amount="2500.00"
    )
    entries = (await coord.client.get(f"/v1/audit?case_id={case_id}", headers=auditor)).json()["items"]
    assert [e["action"] for e in entries][:2] == ["case.opened", "instruction.issued"]
    assert entries[1]["legal_basis"].startswith("case ") and entries[1]["actor"]
    verdict = (await coord.client.get("/v1/audit/verify", headers=auditor)).json()
    assert verdict["ok"] and verdict["checked"] >= 2
    check = AuditCheck(sessions, interval_s=60, whole_interval_s=3600)  # the scheduled verification
    assert (await check.whole()).through_id >= entries[1]["id"]
    assert await sample(coord.client, "stopline_audit_chain_ok") == 1
    target = entries[1]["id"]  # a row the whole walk just verified
    # A later check moves the newest checkpoint past it (the row a check ended at is the next test's).
    await open_case(coord.client, op, (inst, f.account("MULE"), "100.00"))
    assert (await check.once()).through_id > target

    conn = await asyncpg.connect(plain_dsn(infra.database_url))
    try:
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("update audit_log set actor = 'someone else' where id = $1", target)
        original = await conn.fetchrow("select * from audit_log where id = $1", target)
        await conn.execute("alter table audit_log disable trigger audit_log_append_only")
        try:
            # Changed: the amount in the record of the stop-payment. The command line and the next walk of
            # the whole chain name it; the page then says what that walk found.
            await conn.execute(
                """update audit_log set after = jsonb_set(after, '{amount}', '"25.00"') where id = $1""",
                target,
            )
            code, err = await _cli(infra.database_url)
            assert code == 1 and f"row {target}" in err
            assert (await check.whole()).first_bad_id == target
            assert await sample(coord.client, "stopline_audit_chain_ok") == 0  # what the alert reads
            verdict = (await coord.client.get("/v1/audit/verify", headers=auditor)).json()
            assert not verdict["ok"] and verdict["first_bad_id"] == target and "changed" in verdict["reason"]

            # Deleted: the next row's link breaks, and it is the one named.
            await conn.execute("update audit_log set after = $2 where id = $1", target, original["after"])
            await conn.execute("delete from audit_log where id = $1", target)
            assert (await check.once()).first_bad_id > target  # the last check failed: the whole again
            verdict = (await coord.client.get("/v1/audit/verify", headers=auditor)).json()
            assert not verdict["ok"] and verdict["first_bad_id"] > target and "link" in verdict["reason"]
            await _insert(conn, original)
        finally:
            await conn.execute("alter table audit_log enable trigger audit_log_append_only")
    finally:
        await conn.close()
    assert (await _cli(infra.database_url))[0] == 0
    before = await sample(coord.client, "stopline_audit_verified_timestamp_seconds")
    assert (await check.once()).ok
    assert (await coord.client.get("/v1/audit/verify", headers=auditor)).json()["ok"]
    assert await sample(coord.client, "stopline_audit_chain_ok") == 1
    assert await sample(coord.client, "stopline_audit_verified_timestamp_seconds") >= before
    assert stop["id"]


async def _insert(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    cols = list(row.keys())
    marks = ", ".join(f"${i + 1}" for i in range(len(cols)))
    await conn.execute(f"insert into audit_log ({', '.join(cols)}) values ({marks})", *row.values())


async def test_the_page_verifies_the_rows_since_the_last_check(infra, coord, sessions):
    """The page's verdict costs the rows appended since the newest checkpoint, not the whole log: those
    are walked from the checkpoint on each call, and the row the checkpoint ended at must still hold."""
    auditor = f.officer("auditor")
    check = AuditCheck(sessions, interval_s=60, whole_interval_s=3600)
    walked = await check.whole()
    inst, _, _ = await bank(sessions)
    case_id = await open_case(coord.client, f.officer(), (inst, f.account("MULE"), "900.00"))
    entries = (await coord.client.get(f"/v1/audit?case_id={case_id}", headers=auditor)).json()["items"]
    newest = entries[-1]["id"]
    verdict = (await coord.client.get("/v1/audit/verify", headers=auditor)).json()
    assert verdict["ok"] and verdict["through_id"] >= newest > walked.through_id
    assert verdict["checked"] >= walked.checked + len(entries) and verdict["whole_verified_at"]

    conn = await asyncpg.connect(plain_dsn(infra.database_url))
    try:
        await conn.execute("alter table audit_log disable trigger audit_log_append_only")
        try:
            # A row appended after the checkpoint, changed: named on the page at once.
            await conn.execute("update audit_log set actor = 'someone else' where id = $1", newest)
            verdict = (await coord.client.get("/v1/audit/verify", headers=auditor)).json()
            assert not verdict["ok"] and verdict["first_bad_id"] == newest and "changed" in verdict["reason"]
            await conn.execute("update audit_log set actor = $2 where id = $1", newest, entries[-1]["actor"])
            # The row a check ended at, removed (the newest rows deleted): named too.
            tail = await check.once()
            assert tail.ok and tail.through_id >= newest
            last = await conn.fetchrow("select * from audit_log where id = $1", tail.through_id)
            await conn.execute("delete from audit_log where id = $1", tail.through_id)
            verdict = (await coord.client.get("/v1/audit/verify", headers=auditor)).json()
            assert not verdict["ok"] and verdict["first_bad_id"] == tail.through_id
            assert "removed" in verdict["reason"]
            # The whole chain still links without it; the walks after the failure must meet it all the same.
            assert not (await check.once()).ok
            again = await check.once()
            assert not again.ok and again.first_bad_id == tail.through_id
            assert (await _cli(infra.database_url))[0] == 1
            await _insert(conn, last)
        finally:
            await conn.execute("alter table audit_log enable trigger audit_log_append_only")
    finally:
        await conn.close()
    assert (await check.once()).ok
    assert (await coord.client.get("/v1/audit/verify", headers=auditor)).json()["ok"]


async def _audited(client, entity_id: str) -> list[dict]:
    auditor = f.officer("auditor")
    return list((await client.get(f"/v1/audit?entity_id={entity_id}", headers=auditor)).json()["items"])


async def test_alert_triage_is_in_the_chain(coord, sessions):
    alert = f.alert()
    async with unit_of_work(sessions) as session:
        await alerts.store(session, alerts=[alert])
    op = f.officer("operator", sub="officer-wang", unit="triage-unit")
    url = f"/v1/alerts/{alert.alert_id}/status"
    assert (await coord.client.post(url, json={"status": "triaged"}, headers=op)).status_code == 200
    dismissed = await coord.client.post(url, json={"status": "dismissed", "note": "a known shop"}, headers=op)
    assert dismissed.status_code == 200
    entries = await _audited(coord.client, str(alert.alert_id))
    assert [(e["action"], e["actor"], e["actor_role"], e["actor_unit"]) for e in entries] == [
        ("alert.triaged", "officer-wang", "operator", "triage-unit"),
        ("alert.dismissed", "officer-wang", "operator", "triage-unit"),
    ]
    assert entries[1]["before"] == {"status": "triaged"}
    assert entries[1]["after"] == {"status": "dismissed", "note": "a known shop"}
    assert entries[1]["legal_basis"] == "a known shop"


async def test_a_declined_instruction_keeps_the_supervisors_note(coord, sessions):
    op, sup = f.officer(unit="decline-unit"), f.officer("supervisor", sub="sup-zhao", unit="decline-unit")
    inst, _, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(coord.client, op, (inst, account, "7000.00"))
    freeze = await issue(
        coord.client,
        op,
        case_id,
        kind="freeze",
        institution_id=inst,
        account=account,
        amount="7000.00",
        document_number="DOC-1",
    )
    assert freeze["status"] == "awaiting_approval"
    note = "the document number does not match the court order"
    declined = await coord.client.post(
        f"/v1/instructions/{freeze['id']}/decline", json={"note": note}, headers=sup
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined" and declined.json()["decision_note"] == note
    [entry] = [e for e in await _audited(coord.client, freeze["id"]) if e["action"] == "instruction.declined"]
    assert entry["actor"] == "sup-zhao" and entry["after"]["decision_note"] == note
    assert entry["before"]["status"] == "awaiting_approval" and entry["after"]["status"] == "declined"


async def test_a_cases_newest_timeline_entries_come_in_order_with_nothing_after_them(coord, sessions):
    c, op = coord.client, f.officer()
    case_id = await open_case(c, op)
    for n in range(3):
        r = await c.post(f"/v1/cases/{case_id}/notes", json={"text": f"note {n}"}, headers=op)
        assert r.status_code in (200, 201), r.text
    url = f"/v1/cases/{case_id}/timeline"
    every = (await c.get(url, headers=op)).json()["items"]
    assert len(every) >= 4  # opened, three notes
    first = (await c.get(url, params={"limit": 2}, headers=op)).json()
    assert [e["id"] for e in first["items"]] == [e["id"] for e in every[:2]] and first["next_after_id"]
    newest = (await c.get(url, params={"limit": 2, "newest": "true"}, headers=op)).json()
    assert [e["id"] for e in newest["items"]] == [e["id"] for e in every[-2:]]
    assert newest["next_after_id"] is None
