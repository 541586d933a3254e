"""The one unit of work: its before-commit hooks run once each, in order, as the last statements of a
work that succeeds, and never for one that rolls back; its after-commit calls only once it has committed;
audit entries are sealed by it in any service."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.audit import repository
from services.kit.audit import service as audit
from services.kit.audit.models import AuditEntry
from services.kit.db import BeforeCommit, after_commit, before_commit, unit_of_work
from tests import locks
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration


async def _entries_about(sessions: async_sessionmaker[AsyncSession], entity: str) -> list[AuditEntry]:
    async with sessions() as s:
        return list((await s.execute(select(AuditEntry).where(AuditEntry.entity_id == entity))).scalars())


async def test_hooks_run_once_in_order_before_the_commit(sessions):
    seen: list[str] = []

    async def first(session: AsyncSession) -> None:
        # Inside the transaction: what it writes commits with the work.
        seen.append(f"first in transaction={session.in_transaction()}")
        before_commit(session, third)  # a hook may ask for another

    async def second(session: AsyncSession) -> None:
        seen.append("second")

    async def third(session: AsyncSession) -> None:
        seen.append("third")

    async with unit_of_work(sessions) as session:
        before_commit(session, first)
        before_commit(session, second)
        before_commit(session, first)  # asked twice: runs once
        assert seen == []  # nothing runs before the block ends
    assert seen == ["first in transaction=True", "second", "third"]


async def test_no_hook_runs_when_the_work_rolls_back(sessions):
    seen: list[str] = []

    async def hook(session: AsyncSession) -> None:
        seen.append("ran")

    entity = str(uuid.uuid4())
    with pytest.raises(RuntimeError, match="the action failed"):
        async with unit_of_work(sessions) as session:
            before_commit(session, hook)
            await audit.record(
                session, actor=audit.SYSTEM, action="test.rolled_back", entity_type="t", entity_id=entity
            )
            raise RuntimeError("the action failed")
    assert seen == []
    assert await _entries_about(sessions, entity) == []


async def test_a_metric_counted_after_commit_counts_only_what_committed(sessions):
    """What a work did is counted once it has committed: not while it is open, not when it rolls back, not
    when its commit is refused (a batch handled again after such a failure would otherwise count twice)."""
    registry = CollectorRegistry()
    done = Counter("test_works_done", "works done", registry=registry)

    def counted() -> float | None:
        return registry.get_sample_value("test_works_done_total")

    async with unit_of_work(sessions) as session:
        after_commit(session, done.inc)
        after_commit(session, done.inc)  # asked twice: counted twice (two things done)
        after_commit(session, partial(done.inc, 3))
        await session.execute(text("select 1"))
        assert counted() == 0  # the work is still open
    assert counted() == 5

    with pytest.raises(RuntimeError, match="the action failed"):
        async with unit_of_work(sessions) as session:
            after_commit(session, done.inc)
            raise RuntimeError("the action failed")
    assert counted() == 5

    entity = str(uuid.uuid4())
    with pytest.raises(DBAPIError, match="READ COMMITTED only"):  # refused by the database at commit
        async with unit_of_work(sessions) as session:
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            await audit.record(
                session, actor=audit.SYSTEM, action="test.refused", entity_type="t", entity_id=entity
            )
            after_commit(session, done.inc)
    assert counted() == 5
    assert await _entries_about(sessions, entity) == []


async def test_audit_entries_are_sealed_into_the_chain_by_the_unit_of_work(sessions):
    entity = str(uuid.uuid4())
    async with unit_of_work(sessions) as session:
        for n in range(2):
            await audit.record(
                session, actor=audit.SYSTEM, action=f"test.step{n}", entity_type="t", entity_id=entity
            )
    first, second = sorted(await _entries_about(sessions, entity), key=lambda e: e.id)
    assert second.prev_hash == first.hash and second.hash == audit.entry_hash(second)
    async with sessions() as s:
        assert (await audit.verify(s)).ok


async def _append(
    sessions: async_sessionmaker[AsyncSession], entity: str, *, then: BeforeCommit | None = None
) -> None:
    """A work appending one entry; `then`: a hook run once its entry is written, before its commit."""
    async with unit_of_work(sessions) as session:
        await audit.record(
            session, actor=audit.SYSTEM, action="test.append", entity_type="t", entity_id=entity
        )
        if then is not None:
            before_commit(session, then)


async def test_an_append_waiting_for_the_chain_links_to_the_one_that_held_it(sessions):
    """The database chains a transaction's entries as it commits, under the chain's lock. Two works append
    at once: the second's commit waits for the lock while the first holds it, its entry written but not
    committed; once the first has committed, the second's entry comes after it and the chain holds (the head
    read after the wait, not before it: read before, the second would link to an older entry, a fork)."""
    first_entity, second_entity = str(uuid.uuid4()), str(uuid.uuid4())
    holding, go_on = asyncio.Event(), asyncio.Event()
    holder: list[int] = []

    async def hold_the_chain(session: AsyncSession) -> None:
        await session.execute(text("select pg_advisory_xact_lock(:k)"), {"k": repository.CHAIN_LOCK})
        holder.append(await locks.backend(session))
        holding.set()
        await go_on.wait()

    first = asyncio.create_task(_append(sessions, first_entity, then=hold_the_chain))
    await holding.wait()
    second = asyncio.create_task(_append(sessions, second_entity))
    await eventually(lambda: locks.blocked_by(sessions, holder[0]), timeout_s=10)
    go_on.set()
    await asyncio.gather(first, second)
    (a,), (b,) = await _entries_about(sessions, first_entity), await _entries_about(sessions, second_entity)
    assert a.id < b.id and b.hash == audit.entry_hash(b)
    async with sessions() as s:  # (b links to a, or to an append of the session's services in between)
        assert (await audit.verify(s)).ok


async def test_an_append_does_not_wait_for_another_work_still_open(sessions):
    """A work whose entries are written but which has not committed (its client slow, or its process
    stopped) holds nothing of the chain: another work's append commits meanwhile, and the first's entry
    comes after it once it commits."""
    slow_entity, quick_entity = str(uuid.uuid4()), str(uuid.uuid4())
    written, go_on = asyncio.Event(), asyncio.Event()

    async def stall(session: AsyncSession) -> None:
        written.set()
        await go_on.wait()

    slow = asyncio.create_task(_append(sessions, slow_entity, then=stall))
    await written.wait()
    await asyncio.wait_for(_append(sessions, quick_entity), 10)  # (before: it waited for the slow one)
    go_on.set()
    await slow
    (quick,), (late,) = (
        await _entries_about(sessions, quick_entity),
        await _entries_about(sessions, slow_entity),
    )
    assert quick.id < late.id
    async with sessions() as s:
        assert (await audit.verify(s)).ok


async def test_the_database_hashes_an_entry_as_the_chain_is_verified(sessions):
    """The hash the database computes at commit, over the JSON the application wrote and the head, is the
    one verification computes from the row: with text in Chinese, numbers as strings, nested values."""
    entity = str(uuid.uuid4())
    async with unit_of_work(sessions) as session:
        await audit.record(
            session,
            actor=audit.Actor("警官-7", "supervisor", "反诈中心"),
            action="test.unicode",
            entity_type="t",
            entity_id=entity,
            case_id=uuid.uuid4(),
            legal_basis='《电信网络诈骗及其关联违法犯罪联合惩戒办法》第十条 "止付"',
            before={"金额": Decimal("12.50"), "list": [1, "二", None]},
            after={"note": "line\nbreak and \u2028", "at": datetime.now(UTC)},
        )
    (entry,) = await _entries_about(sessions, entity)
    assert entry.hash == audit.entry_hash(entry)
    async with sessions() as s:
        assert (await s.execute(text("select count(*) from audit_pending"))).scalar_one() == 0
        assert (await audit.verify(s)).ok


async def test_an_append_under_a_stricter_isolation_level_is_refused(sessions):
    """Under REPEATABLE READ the head the database would read is the transaction's older snapshot (a fork):
    the commit is refused, and nothing of the work is written."""
    entity = str(uuid.uuid4())
    with pytest.raises(DBAPIError, match="READ COMMITTED only"):
        async with unit_of_work(sessions) as session:
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            await audit.record(
                session, actor=audit.SYSTEM, action="test.repeatable", entity_type="t", entity_id=entity
            )
    assert await _entries_about(sessions, entity) == []


async def test_a_commit_outside_the_unit_of_work_with_unsealed_entries_is_refused(sessions):
    entity = str(uuid.uuid4())
    async with sessions() as session:
        await audit.record(
            session, actor=audit.SYSTEM, action="test.unsealed", entity_type="t", entity_id=entity
        )
        await session.execute(text("select 1"))
        with pytest.raises(RuntimeError, match="not sealed"):
            await session.commit()
    async with sessions() as s:
        count = select(func.count()).select_from(AuditEntry).where(AuditEntry.entity_id == entity)
        assert (await s.execute(count)).scalar_one() == 0
