"""The de-duplication ledger forgets event ids accepted longer ago than the retention, and only those."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from services.ingest.models import IngestedEvent
from services.ingest.purge import LedgerPurge
from tests import factories as f

pytestmark = pytest.mark.integration


async def test_an_event_id_past_the_retention_is_forgotten_and_a_recent_one_is_not(ingest, sessions):
    telecom, headers = await f.institution(sessions, "telecom")
    old, recent = (f.call(f.phone(), start=f.minutes_ago(10), minutes=2) for _ in range(2))
    first = await ingest.post("/v1/events", json={"events": [old, recent]}, headers=headers)
    assert first.json() == {"accepted": 2, "duplicates": []}
    async with sessions() as s, s.begin():  # accepted eight days ago, as far as the ledger knows
        await s.execute(
            update(IngestedEvent)
            .where(IngestedEvent.institution_id == telecom, IngestedEvent.event_id == old["event_id"])
            .values(received_at=f.now() - timedelta(days=8))
        )

    assert await LedgerPurge(sessions, retention_days=7).once() >= 1

    again = await ingest.post("/v1/events", json={"events": [old, recent]}, headers=headers)
    assert again.json() == {"accepted": 1, "duplicates": [recent["event_id"]]}


async def test_a_backlog_larger_than_a_batch_is_forgotten_a_batch_at_a_time(ingest, sessions):
    telecom, headers = await f.institution(sessions, "telecom")
    events = [f.call(f.phone(), start=f.minutes_ago(10), minutes=2) for _ in range(5)]
    assert (await ingest.post("/v1/events", json={"events": events}, headers=headers)).json()["accepted"] == 5
    async with sessions() as s, s.begin():
        await s.execute(
            update(IngestedEvent)
            .where(IngestedEvent.institution_id == telecom)
            .values(received_at=f.now() - timedelta(days=8))
        )
    assert await LedgerPurge(sessions, retention_days=7, batch=2).once() >= 5
    async with sessions() as s:
        left = select(func.count()).where(IngestedEvent.institution_id == telecom)
        assert (await s.execute(left)).scalar_one() == 0
