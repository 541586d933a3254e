"""The audit log: append-only in the database, hash-chained, and a changed or deleted row is named by
the API and by `python -m services.coordination.audit verify`."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import pytest

from tests import factories as f
from tests.conftest import plain_dsn
from tests.coordination.conftest import bank, issue, open_case

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

    target = entries[1]["id"]
    conn = await asyncpg.connect(plain_dsn(infra.database_url))
    try:
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("update audit_log set actor = 'someone else' where id = $1", target)
        original = await conn.fetchrow("select * from audit_log where id = $1", target)
        await conn.execute("alter table audit_log disable trigger audit_log_append_only")
        try:
            # Changed: the amount in the record of the stop-payment.
            await conn.execute(
                """update audit_log set after = jsonb_set(after, '{amount}', '"25.00"') where id = $1""",
                target,
            )
            verdict = (await coord.client.get("/v1/audit/verify", headers=auditor)).json()
            assert not verdict["ok"] and verdict["first_bad_id"] == target and "changed" in verdict["reason"]
            code, err = await _cli(infra.database_url)
            assert code == 1 and f"row {target}" in err

            # Deleted: the next row's link breaks, and it is the one named.
            await conn.execute("update audit_log set after = $2 where id = $1", target, original["after"])
            await conn.execute("delete from audit_log where id = $1", target)
            verdict = (await coord.client.get("/v1/audit/verify", headers=auditor)).json()
            assert not verdict["ok"] and verdict["first_bad_id"] > target and "link" in verdict["reason"]
            cols = list(original.keys())
            marks = ", ".join(f"${i + 1}" for i in range(len(cols)))
            names = ", ".join(cols)
            await conn.execute(f"insert into audit_log ({names}) values ({marks})", *original.values())
        finally:
            await conn.execute("alter table audit_log enable trigger audit_log_append_only")
    finally:
        await conn.close()
    assert (await coord.client.get("/v1/audit/verify", headers=auditor)).json()["ok"]
    assert (await _cli(infra.database_url))[0] == 0
    assert stop["id"]
