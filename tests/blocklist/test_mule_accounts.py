"""Mule accounts on the blocklist, on the real PostgreSQL and Kafka: a supervisor's listing reviewed by a
second officer, the banks' sync and feed (telecoms see no accounts), appeal and expiry, and the
scorer's view of the list."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from services.blocklist import receivers
from services.blocklist.models import Entry
from services.kit.db import unit_of_work
from services.scorer.blocklist import Blocklist
from streams import topics
from streams.schemas.blocklist import FraudReceiver
from tests import factories as f
from tests.blocklist.conftest import blocklist_client, wait_expired
from tests.coordination.conftest import open_case
from tests.kafka_tools import eventually, read_topic

pytestmark = pytest.mark.integration


async def _listed(blocklist, institution: str, account: str, *, joins: bool = False) -> dict[str, Any]:
    """List the account: a new proposal, or (`joins`) one joining the proposal it has, then reviewed."""
    proposed = await blocklist.post(
        "/v1/blocklist/accounts",
        json={"institution": institution, "account": account, "reason": "received victims' money"},
        headers=f.officer("supervisor", sub="chief"),
    )
    assert proposed.status_code == (200 if joins else 201), proposed.text
    assert proposed.json()["status"] == "proposed" and proposed.json()["kind"] == "account"
    reviewed = await blocklist.post(
        f"/v1/blocklist/entries/{proposed.json()['id']}/review",
        json={"decision": "approve"},
        headers=f.officer("operator", sub="reviewer"),
    )
    assert reviewed.status_code == 200, reviewed.text
    return reviewed.json()


async def _feed_has(infra, institution: str, account: str, status: str) -> None:
    def seen(records) -> bool:
        return any(
            (v := orjson.loads(r.value))["account"] == account
            and v["institution"] == institution
            and v["status"] == status
            for r in records
        )

    await read_topic(
        infra.kafka, topics.name(topics.BLOCKLIST_ACCOUNTS, infra.prefix), until=seen, timeout_s=10
    )


async def test_a_listed_account_reaches_banks_and_the_scorer_and_leaves_on_appeal(blocklist, infra, sessions):
    bank, bank_headers = await f.institution(sessions, "bank")
    _, telecom = await f.institution(sessions, "telecom")
    mule = f.account("MULE")
    scorer_view = Blocklist()
    runner = scorer_view.runner(infra.common)
    task = asyncio.create_task(runner.run())
    try:
        # Only a supervisor lists an account; an operator may not, and an unknown bank is named as such.
        by_operator = await blocklist.post(
            "/v1/blocklist/accounts",
            json={"institution": bank, "account": mule, "reason": "r"},
            headers=f.officer("operator"),
        )
        assert by_operator.status_code == 403
        unknown = await blocklist.post(
            "/v1/blocklist/accounts",
            json={"institution": "no-such-bank", "account": mule, "reason": "r"},
            headers=f.officer("supervisor"),
        )
        assert unknown.status_code == 422
        assert unknown.json()["error"]["details"][0]["field"] == "body.institution"
        own = await blocklist.post(
            "/v1/blocklist/accounts",
            json={"institution": bank, "account": mule, "reason": "r"},
            headers=f.officer("supervisor", sub="chief"),
        )
        refused = await blocklist.post(
            f"/v1/blocklist/entries/{own.json()['id']}/review",
            json={"decision": "approve"},
            headers=f.officer("supervisor", sub="chief"),
        )
        assert refused.status_code == 403  # the lister does not review their own listing

        entry = await _listed(blocklist, bank, mule, joins=True)
        assert entry["id"] == own.json()["id"] and entry["status"] == "active"
        page = (await blocklist.get("/v1/blocklist/accounts", headers=bank_headers)).json()
        assert (bank, mule, "active") in {
            (c["institution"], c["account"], c["status"]) for c in page["changes"]
        }
        # Telecoms get numbers only: no account in their sync, and the accounts' sync is not for them.
        assert all(
            "account" not in c
            for c in (await blocklist.get("/v1/blocklist", headers=telecom)).json()["changes"]
        )
        assert (await blocklist.get("/v1/blocklist/accounts", headers=telecom)).status_code == 403
        await _feed_has(infra, bank, mule, "active")
        await eventually(lambda: scorer_view.lists_account(bank, mule), timeout_s=15)
        # A scorer started now reads the lists whole before it says they are loaded (its account stage
        # scores nothing before): the account is listed by then.
        late = Blocklist()
        late_runner = late.runner(infra.common)
        late_task = asyncio.create_task(late_runner.run())
        try:
            await asyncio.wait_for(late.loaded.wait(), 30)
            assert late.lists_account(bank, mule)
        finally:
            late_runner.stop()
            await asyncio.wait_for(late_task, 15)

        appeal = await blocklist.post(
            f"/v1/blocklist/entries/{entry['id']}/appeals",
            json={"statement": "the account was rented without the holder knowing; now closed"},
            headers=f.officer("operator", sub="desk-1"),
        )
        assert appeal.status_code == 201, appeal.text
        decided = await blocklist.post(
            f"/v1/blocklist/appeals/{appeal.json()['id']}/decision",
            json={"uphold": True, "note": "holder cleared"},
            headers=f.officer("supervisor", sub="chief-2"),
        )
        assert decided.status_code == 200
        changes = (
            await blocklist.get(
                "/v1/blocklist/accounts", params={"since": entry["version"]}, headers=bank_headers
            )
        ).json()["changes"]
        assert (mule, "removed") in {(c["account"], c["status"]) for c in changes}
        await _feed_has(infra, bank, mule, "removed")
        await eventually(lambda: not scorer_view.lists_account(bank, mule), timeout_s=15)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 15)


async def test_listed_accounts_expire(infra, sessions):
    bank, bank_headers = await f.institution(sessions, "bank")
    mule = f.account("MULE")
    async with blocklist_client(infra)(entry_ttl_s=1.0) as short:
        entry = await _listed(short, bank, mule)
        await wait_expired(short, entry["id"])
        current = (await short.get("/v1/blocklist/accounts", headers=bank_headers)).json()["changes"]
        assert mule not in {c["account"] for c in current}
        await _feed_has(infra, bank, mule, "expired")


async def test_a_fraud_receiver_message_is_taken_once(blocklist, coord, sessions):
    """Coordination's message redelivered (a relay or a batch retried after a crash) after the first was
    reviewed and rejected: no second proposal; another message about the account is a new one."""
    bank, _ = await f.institution(sessions, "bank")
    mule = f.account("MULE")
    case_id = uuid.UUID(await open_case(coord.client, f.officer(), (bank, mule, "900.00")))

    def message(message_id: str) -> FraudReceiver:
        return FraudReceiver(
            message_id=message_id,
            source="freeze",
            institution=bank,
            account=mule,
            case_id=case_id,
            case_number="CJ-RECEIPT-1",
            decided_by="fz-chief",
            role="supervisor",
            unit="changji-psb",
            decided_at=datetime.now(UTC),
        )

    async def proposals() -> list[str]:
        async with sessions() as s:
            rows = (await s.execute(select(Entry).where(Entry.account == mule))).scalars()
            return [e.status for e in rows]

    first = message(f.unique("msg"))
    async with unit_of_work(sessions) as s:
        await receivers.take(s, first)
    assert await proposals() == ["proposed"]
    entry = (
        await blocklist.get("/v1/blocklist/entries", params={"status": "proposed"}, headers=f.officer())
    ).json()["items"]
    entry_id = next(e["id"] for e in entry if e["account"] == mule)
    rejected = await blocklist.post(
        f"/v1/blocklist/entries/{entry_id}/review", json={"decision": "reject"}, headers=f.officer()
    )
    assert rejected.status_code == 200

    async with unit_of_work(sessions) as s:
        await receivers.take(s, first)
    assert await proposals() == ["rejected"]
    async with unit_of_work(sessions) as s:
        await receivers.take(s, message(f.unique("msg")))
    assert sorted(await proposals()) == ["proposed", "rejected"]


async def test_a_listing_cites_only_a_confirmed_case_of_the_supervisors_unit(blocklist, coord, sessions):
    bank, _ = await f.institution(sessions, "bank")
    mule = f.account("MULE")
    officer = f.officer("operator", unit="cite-unit")
    case_id = await open_case(coord.client, officer, (bank, mule, "900.00"))
    # Another account than the case's own (which coordination proposes itself once the case is confirmed).
    listed_account = f.account("MULE")

    async def cite(unit: str) -> httpx.Response:
        body = {"institution": bank, "account": listed_account, "reason": "paid on from the case's mule"}
        return await blocklist.post(
            "/v1/blocklist/accounts",
            json=body | {"case_id": case_id},
            headers=f.officer("supervisor", unit=unit),
        )

    for unit in ("cite-unit", "another-unit"):  # still open; another unit's: the same answer
        refused = await cite(unit)
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["field"] == "body.case_id"
    closed = await coord.client.patch(
        f"/v1/cases/{case_id}", json={"status": "closed", "outcome": "confirmed_fraud"}, headers=officer
    )
    assert closed.status_code == 200
    assert (await cite("another-unit")).status_code == 422
    listed = await cite("cite-unit")
    assert listed.status_code == 201 and listed.json()["case_id"] == case_id


async def test_the_receivers_consumer_waits_out_a_database_outage(infra, sessions):
    """A PostgreSQL restart is an outage, retried until it is over (as every other consumer does), not a
    failure whose fifth attempt stops the consumer and has its process reported dead."""
    runner = receivers.build_runner(infra.common, sessions)
    assert runner.retry_while is not None
    refused = OSError(111, "Connection refused")  # what the driver raises while the server restarts
    assert runner.retry_while(refused)
    assert not runner.retry_while(ValueError("a bug stays one"))
