"""The one unit of work: its before-commit hooks run once each, in order, as the last statements of a
work that succeeds, and never for one that rolls back; audit entries are sealed by it in any service."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.audit import service as audit
from services.kit.audit.models import AuditEntry
from services.kit.db import before_commit, unit_of_work
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


async def test_an_append_waiting_for_the_chain_links_to_the_one_that_held_it(sessions):
    """Two works append at once: the second waits for the chain while the first, its entry written, has not
    committed; once it has, the second's entry comes after the first's and the chain holds (the head read
    after the wait, not before it: read before, the second would link to an older entry, a fork)."""
    first_entity, second_entity = str(uuid.uuid4()), str(uuid.uuid4())
    sealed, go_on = asyncio.Event(), asyncio.Event()
    pids: dict[str, int] = {}

    async def wait_after_sealing(session: AsyncSession) -> None:  # the chain's lock is held meanwhile
        sealed.set()
        await go_on.wait()

    async def append(entity: str, *, stop_at_the_lock: bool) -> None:
        async with unit_of_work(sessions) as session:
            await audit.record(
                session, actor=audit.SYSTEM, action="test.append", entity_type="t", entity_id=entity
            )
            pids[entity] = await locks.backend(session)
            if stop_at_the_lock:
                before_commit(session, wait_after_sealing)

    async def second_waits_for_first() -> bool:
        async with sessions() as s:
            stmt = text("select :first = any(pg_blocking_pids(:second))")
            found = await s.execute(stmt, {"first": pids[first_entity], "second": pids[second_entity]})
            return bool(found.scalar_one())

    first = asyncio.create_task(append(first_entity, stop_at_the_lock=True))
    await sealed.wait()
    second = asyncio.create_task(append(second_entity, stop_at_the_lock=False))
    await eventually(lambda: second_entity in pids and second_waits_for_first(), timeout_s=10)
    go_on.set()
    await asyncio.gather(first, second)
    (a,), (b,) = await _entries_about(sessions, first_entity), await _entries_about(sessions, second_entity)
    assert a.id < b.id and b.hash == audit.entry_hash(b)
    async with sessions() as s:
        assert (await audit.verify(s)).ok


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
