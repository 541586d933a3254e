"""The outbox's housekeeping removes messages delivered or given up past the retention, and nothing a relay
still has to send or is sending; a backlog larger than a batch goes a batch at a time; two instances purging
at once neither wait for nor trouble each other; coordination runs it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.coordination.delivery.models import OutboxMessage
from services.coordination.delivery.purge import OutboxPurge
from services.kit.db import unit_of_work
from tests.coordination.conftest import running, worker
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration

RETENTION_DAYS = 90
OLD = timedelta(days=RETENTION_DAYS + 1)


def _row(tag: str, name: str, *, age: timedelta, state: str, channel: str = "kafka") -> OutboxMessage:
    """A message queued `age` ago, in `state`: delivered, dead, pending (waiting for its next attempt), or
    in_flight (leased by a relay publishing it)."""
    now = datetime.now(UTC)
    done = now - age + timedelta(seconds=1)
    fields: dict[str, Any] = {
        "delivered": {"sent_at": done, "attempts": 1},
        "dead": {"dead_at": done, "attempts": 8, "last_error": "HTTP 503"},
        "pending": {"next_attempt_at": now - age, "attempts": 0},
        "in_flight": {"next_attempt_at": now + timedelta(seconds=30), "attempts": 1, "publisher": "relay-a"},
    }[state]
    return OutboxMessage(
        message_id=f"{tag}-{name}",
        institution_id="bank-purge",
        channel=channel,
        topic="instructions.bank-purge" if channel == "kafka" else None,
        key=tag,
        payload={"type": "instruction"},
        created_at=now - age,
        **fields,
    )


async def _add(sessions: Any, rows: list[OutboxMessage]) -> None:
    async with unit_of_work(sessions) as session:
        session.add_all(rows)


async def _left(sessions: Any, tag: str) -> set[str]:
    """Names (and channels) of the messages of `tag` still in the outbox."""
    async with sessions() as s:
        stmt = select(OutboxMessage.message_id, OutboxMessage.channel).where(
            OutboxMessage.message_id.like(f"{tag}-%")
        )
        return {f"{m.removeprefix(tag + '-')}/{c}" for m, c in (await s.execute(stmt)).all()}


def _purged_total() -> float:
    return REGISTRY.get_sample_value("stopline_outbox_purged_total") or 0.0


async def test_finished_messages_past_the_retention_are_removed_and_nothing_still_to_send(
    sessions, caplog: pytest.LogCaptureFixture
):
    tag = uuid.uuid4().hex
    await _add(
        sessions,
        [
            _row(tag, "old-delivered", age=OLD, state="delivered"),
            _row(tag, "old-dead", age=OLD, state="dead", channel="webhook"),
            _row(tag, "old-pending", age=OLD, state="pending", channel="webhook"),
            _row(tag, "old-in-flight", age=OLD, state="in_flight"),
            _row(tag, "young-delivered", age=timedelta(days=RETENTION_DAYS - 1), state="delivered"),
            # Delivered on Kafka, its webhook copy still retried: that copy's giving up asks whether the
            # Kafka copy reached the bank, so the Kafka row stays while the webhook one waits.
            _row(tag, "both", age=OLD, state="delivered"),
            _row(tag, "both", age=OLD, state="pending", channel="webhook"),
        ],
    )
    before = _purged_total()

    with caplog.at_level(logging.INFO, logger="services.kit.purge"):
        removed = await OutboxPurge(sessions, retention_days=RETENTION_DAYS).once()

    assert await _left(sessions, tag) == {
        "old-pending/webhook",
        "old-in-flight/kafka",
        "young-delivered/kafka",
        "both/kafka",
        "both/webhook",
    }
    assert removed >= 2
    assert _purged_total() - before == removed
    logged = [r for r in caplog.records if r.getMessage() == "rows purged"]
    assert [r.fields for r in logged] == [{"job": "outbox purge", "removed": removed}]  # type: ignore[attr-defined]


async def test_a_backlog_larger_than_a_batch_is_removed_a_batch_at_a_time(sessions):
    tag = uuid.uuid4().hex
    await _add(sessions, [_row(tag, f"m{i}", age=OLD, state="delivered") for i in range(25)])

    assert await OutboxPurge(sessions, retention_days=RETENTION_DAYS, batch=4).once() >= 25

    assert await _left(sessions, tag) == set()


async def test_a_purge_skips_the_rows_another_instance_holds_and_two_at_once_remove_everything(sessions):
    tag = uuid.uuid4().hex
    await _add(sessions, [_row(tag, f"m{i}", age=OLD, state="delivered") for i in range(30)])
    await _add(sessions, [_row(tag, "waiting", age=OLD, state="pending")])

    # Another instance in the middle of a batch holds two of the rows: this one neither waits for it
    # (a DELETE waiting on its locks could outlast the statement timeout) nor fails.
    async with sessions() as other, other.begin():
        held = select(OutboxMessage.id).where(OutboxMessage.message_id.in_([f"{tag}-m0", f"{tag}-m1"]))
        assert len((await other.execute(held.with_for_update())).all()) == 2
        await asyncio.wait_for(OutboxPurge(sessions, retention_days=RETENTION_DAYS, batch=7).once(), 10)
        assert await _left(sessions, tag) == {"m0/kafka", "m1/kafka", "waiting/kafka"}

    # Its batch let go, two instances purging at once (small batches, so their rounds interleave).
    await _add(sessions, [_row(tag, f"n{i}", age=OLD, state="delivered") for i in range(30)])
    purges = [OutboxPurge(sessions, retention_days=RETENTION_DAYS, batch=3) for _ in range(2)]
    removed = await asyncio.gather(*(p.once() for p in purges))

    assert sum(removed) >= 32
    assert await _left(sessions, tag) == {"waiting/kafka"}


async def test_coordination_purges_its_outbox_when_it_starts(infra, sessions):
    tag = uuid.uuid4().hex
    old, young = (
        _row(tag, name, age=age, state="delivered") for name, age in (("old", OLD), ("young", timedelta()))
    )
    await _add(sessions, [old, young])

    async with running(infra, consume=False, relay=False, outbox_retention_days=RETENTION_DAYS):

        async def purged() -> bool:
            return await _left(sessions, tag) == {"young/kafka"}

        await eventually(purged, timeout_s=10)


async def test_the_worker_purges_too_where_it_runs_the_scheduler(infra, sessions):
    """The API with its scheduler off and `services.coordination.worker` beside it (docs/scaling.md): the
    worker runs the scheduler's periodic jobs, the purge among them."""
    tag = uuid.uuid4().hex
    old, young = (
        _row(tag, name, age=age, state="delivered") for name, age in (("old", OLD), ("young", timedelta()))
    )
    await _add(sessions, [old, young])
    retention = {"STOPLINE_COORDINATION_OUTBOX_RETENTION_DAYS": str(RETENTION_DAYS)}
    async with worker(infra.common.database_url, infra.prefix, **retention) as started:

        async def purged() -> bool:
            assert started.process.returncode is None, "the worker exited"
            return await _left(sessions, tag) == {"young/kafka"}

        await eventually(purged, timeout_s=30)
