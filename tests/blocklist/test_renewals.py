"""Renewing a listing before it expires, on the real PostgreSQL and Kafka: a second person reviews it, the
new expiry is one listing period from the approval, published to the sync and the feed, and audited; a
listing that has ended is not renewed."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from sqlalchemy import select

from services.blocklist.settings import BlocklistSettings
from services.kit.audit import service as audit
from services.kit.audit.models import AuditEntry
from streams import topics
from tests import factories as f
from tests.blocklist.conftest import blocklist_client, listed_number, sync_numbers, wait_expired
from tests.kafka_tools import read_topic

pytestmark = pytest.mark.integration


async def _renewed(blocklist, entry_id: str) -> dict:
    """The listing renewed: proposed by one officer, approved by another."""
    proposed = await blocklist.post(
        f"/v1/blocklist/entries/{entry_id}/renewals", json={"reason": "still calling"}, headers=f.officer()
    )
    assert proposed.status_code == 201, proposed.text
    approved = await blocklist.post(
        f"/v1/blocklist/renewals/{proposed.json()['id']}/review",
        json={"decision": "approve"},
        headers=f.officer(),
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    return approved.json()


async def _entry(blocklist, entry_id: str, status: str) -> dict:
    rows = (
        await blocklist.get("/v1/blocklist/entries", params={"status": status}, headers=f.officer())
    ).json()["items"]
    return next(r for r in rows if r["id"] == entry_id)


async def test_a_renewal_reviewed_by_a_second_person_lists_the_number_for_a_new_period(
    blocklist, infra, sessions
):
    _, telecom = await f.institution(sessions, "telecom")
    number = f.phone()
    entry = await listed_number(blocklist, number)
    renewals = f"/v1/blocklist/entries/{entry['id']}/renewals"
    asker = f.officer("operator", sub=f.unique("asker"))
    proposed = await blocklist.post(renewals, json={"reason": "still calling victims"}, headers=asker)
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["status"] == "pending"
    again = await blocklist.post(renewals, json={"reason": "me too"}, headers=f.officer())
    assert again.status_code == 409, again.text
    review = f"/v1/blocklist/renewals/{proposed.json()['id']}/review"
    own = await blocklist.post(review, json={"decision": "approve"}, headers=asker)
    assert own.status_code == 403, own.text
    auditor = await blocklist.post(review, json={"decision": "approve"}, headers=f.officer("auditor"))
    assert auditor.status_code == 403, auditor.text
    approved = await blocklist.post(review, json={"decision": "approve", "note": "ok"}, headers=f.officer())
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text

    renewed = await _entry(blocklist, entry["id"], "active")
    at, expires = (datetime.fromisoformat(renewed[k]) for k in ("renewed_at", "expires_at"))
    assert expires - at == timedelta(seconds=BlocklistSettings().entry_ttl_s)  # one listing period
    assert expires > datetime.fromisoformat(entry["expires_at"])
    assert renewed["version"] > entry["version"]
    changes = (await sync_numbers(blocklist, telecom, since=entry["version"])).json()["changes"]
    assert (number, "active", renewed["version"], expires) in {
        (c["number"], c["status"], c["version"], datetime.fromisoformat(c["expires_at"])) for c in changes
    }

    def published(records) -> bool:
        return any(
            (v := orjson.loads(r.value))["number"] == number and v["version"] == renewed["version"]
            for r in records
        )

    records = await read_topic(infra.kafka, topics.name(topics.BLOCKLIST, infra.prefix), until=published)
    record = next(v for r in records if (v := orjson.loads(r.value))["version"] == renewed["version"])
    assert (record["status"], datetime.fromisoformat(record["expires_at"])) == ("active", expires)
    async with sessions() as s:
        stmt = select(AuditEntry.action).where(AuditEntry.entity_id == entry["id"]).order_by(AuditEntry.id)
        actions = list((await s.execute(stmt)).scalars())
        verdict = await audit.verify(s)
    assert actions[-2:] == ["blocklist.renewal_proposed", "blocklist.renewed"]
    assert verdict.ok, verdict


async def test_a_renewed_listing_expires_at_its_new_time_and_is_not_renewed_once_ended(infra, sessions):
    async with blocklist_client(infra)(entry_ttl_s=4.0) as short:
        entry = await listed_number(short, f.phone())
        await _renewed(short, entry["id"])
        renewed = await _entry(short, entry["id"], "active")
        first, then = (datetime.fromisoformat(e["expires_at"]) for e in (entry, renewed))
        assert then > first
        await wait_expired(short, entry["id"])
        ended = await _entry(short, entry["id"], "expired")
        # The expiry job took it off at the renewal's expiry, not the first listing's.
        assert datetime.fromisoformat(ended["ended_at"]) >= datetime.fromisoformat(renewed["expires_at"])
        late = await short.post(
            f"/v1/blocklist/entries/{entry['id']}/renewals", json={"reason": "r"}, headers=f.officer()
        )
        assert late.status_code == 409, late.text
        assert late.json()["error"]["details"] == {"current_status": "expired"}
