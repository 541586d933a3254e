"""The institutions CLI: each credential action is recorded in the audit trail (actor `institutions-cli`)
with the change and logged as one JSON line on stderr, naming the key id or user, never a key or a
password; `delivery` changes the channels it is asked to change, and no other."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from services.institutions.credentials import parse_key
from services.institutions.models import Institution
from services.kit.audit import service as audit
from services.kit.audit.models import AuditEntry
from tests import factories as f

pytestmark = pytest.mark.integration


async def cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run `python -m services.institutions.cli` on the test database: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.institutions.cli",
        *args,
        env=dict(os.environ),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode())
    return proc.returncode or 0, out.decode().strip(), err.decode()


async def _done(*args: str) -> tuple[str, list[dict[str, Any]], str]:
    """Run an action that succeeds: (what it printed, the JSON lines it logged but the start's, stderr)."""
    code, printed, err = await cli(*args)
    assert code == 0, err
    lines = [orjson.loads(line) for line in err.splitlines()]  # every line is JSON
    return printed, [line for line in lines if line["msg"] != "logging configured"], err


async def test_each_credential_action_is_audited_and_logged(sessions):
    ident = f.unique("bank")
    first, logged, err = await _done("create", ident, "--kind", "bank", "--name", "Bank Q")
    first_id = parse_key(first)[0]
    assert [(line["msg"], line["institution"], line.get("key_id")) for line in logged] == [
        ("institution created", ident, None),
        ("api key issued", ident, first_id),
    ]
    second, logged, err2 = await _done("issue-key", ident)
    second_id = parse_key(second)[0]
    assert [(line["msg"], line["key_id"]) for line in logged] == [("api key issued", second_id)]
    password, logged, err3 = await _done("add-user", ident, "li.na")
    assert [(line["msg"], line["user"]) for line in logged] == [("institution_user.added", f"{ident}/li.na")]
    _, logged, err4 = await _done("revoke-key", ident, first_id)
    assert [(line["msg"], line["key_id"]) for line in logged] == [("api key revoked", first_id)]

    async with sessions() as s:
        rows = (
            await s.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity_id.in_([ident, first_id, second_id, f"{ident}/li.na"]))
                .order_by(AuditEntry.id)
            )
        ).all()
        verdict = await audit.verify(s)
    assert [(r.actor, r.action, r.entity_type, r.entity_id, r.after) for r in rows] == [
        ("institutions-cli", "institution.created", "institution", ident, {"kind": "bank", "name": "Bank Q"}),
        ("institutions-cli", "api_key.issued", "api_key", first_id, {"institution": ident}),
        ("institutions-cli", "api_key.issued", "api_key", second_id, {"institution": ident}),
        ("institutions-cli", "institution_user.added", "institution_user", f"{ident}/li.na", None),
        ("institutions-cli", "api_key.revoked", "api_key", first_id, None),
    ]
    assert verdict.ok, verdict.reason
    secrets = [first.partition(".")[2], second.partition(".")[2], password]
    recorded = orjson.dumps([[r.entity_id, r.before, r.after] for r in rows]).decode()
    for secret in secrets:
        assert secret not in err + err2 + err3 + err4 and secret not in recorded


async def _channels(sessions, ident: str) -> tuple[bool, str | None]:
    async with sessions() as s:
        institution = await s.get(Institution, ident)
        assert institution is not None
        return institution.kafka_delivery, institution.webhook_url


async def test_delivery_changes_kafka_only_when_asked(sessions):
    ident, _ = await f.institution(sessions, "bank")
    assert await _channels(sessions, ident) == (True, None)
    await _done("delivery", ident, "--webhook", "https://bank.example/a", "--no-kafka")
    assert await _channels(sessions, ident) == (False, "https://bank.example/a")
    # A new URL, and a rotation with one: the URL changes, and only it.
    await _done("delivery", ident, "--webhook", "https://bank.example/b")
    assert await _channels(sessions, ident) == (False, "https://bank.example/b")
    await _done("delivery", ident, "--rotate-secret", "--webhook", "https://bank.example/c")
    assert await _channels(sessions, ident) == (False, "https://bank.example/c")
    await _done("delivery", ident, "--webhook", "https://bank.example/c", "--kafka")
    assert await _channels(sessions, ident) == (True, "https://bank.example/c")
    # A second rotation within the overlap is refused, as the CLI refuses: `error: …`, exit 2.
    code, printed, err = await cli("delivery", ident, "--rotate-secret")
    assert (code, printed) == (2, "")
    assert err.splitlines()[-1].startswith("error: the previous secret still signs until ")
