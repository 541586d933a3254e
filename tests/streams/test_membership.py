"""Consumer group membership on the real broker: a static member (an instance name) that comes back takes
its partitions back without the group rebalancing; one that does not come back loses them to the others
after the session timeout, or at once when whoever saw it die takes it out of its groups; readiness says
whether a runner holds its partitions; each assignment is counted, with how long it took to be read
again."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import pytest
from prometheus_client import REGISTRY

from deploy.local.processes import Child
from deploy.local.supervisor import GroupRelease
from streams.admin import admin_client
from streams.consumer import Batch, ConsumerRunner
from streams.membership import Expeller
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import eventually
from tests.streams.test_consumer import _topic_with

pytestmark = pytest.mark.integration


async def _nothing(_: Batch) -> None:
    return None


def _member(
    infra: Infra, topic: str, group: str, instance: str, session_timeout_ms: int = 6_000
) -> ConsumerRunner:
    kafka = dataclasses.replace(infra.kafka, instance=instance, session_timeout_ms=session_timeout_ms)
    return ConsumerRunner(kafka=kafka, group_id=group, topics=[topic], handle=_nothing)


async def _joined(runner: ConsumerRunner) -> asyncio.Task[None]:
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.started.wait(), 20)
    await eventually(lambda: runner.readiness() == "ok", timeout_s=30)
    return task


async def _stopped(runner: ConsumerRunner, task: asyncio.Task[None]) -> None:
    runner.stop()
    await asyncio.wait_for(task, 20)


async def test_a_static_member_back_takes_its_partitions_and_nobody_rebalances(infra: Infra):
    topic = await _topic_with(infra, [], partitions=4)
    group = f"{infra.prefix}{f.unique('static')}"
    a, b = _member(infra, topic, group, "a"), _member(infra, topic, group, "b")
    a_task = await _joined(a)
    b_task = await _joined(b)
    try:
        await eventually(
            lambda: len(a.consumer.assignment()) == len(b.consumer.assignment()) == 2, timeout_s=30
        )
        held, b_generation = set(a.consumer.assignment()), b.generation
        # A static member does not leave its group when it stops: to the group, this is a crash.
        await _stopped(a, a_task)
        again = _member(infra, topic, group, "a")
        again_task = await _joined(again)
        try:
            assert set(again.consumer.assignment()) == held
            assert b.generation == b_generation  # b was never asked to give anything up
            assert b.readiness() == "ok"
        finally:
            await _stopped(again, again_task)
    finally:
        await _stopped(b, b_task)


async def test_a_member_that_does_not_come_back_loses_its_partitions_to_the_others(infra: Infra, caplog):
    caplog.set_level(logging.INFO, logger="streams.consumer")
    topic = await _topic_with(infra, [], partitions=4)
    group = f"{infra.prefix}{f.unique('static')}"
    a, b = _member(infra, topic, group, "a"), _member(infra, topic, group, "b")
    a_task = await _joined(a)
    b_task = await _joined(b)
    try:
        await eventually(lambda: len(b.consumer.assignment()) == 2, timeout_s=30)
        await _stopped(a, a_task)
        # After the session timeout. aiokafka sets the assignment before it calls the listener, which is
        # where the runner becomes ready: wait for both.
        await eventually(lambda: len(b.consumer.assignment()) == 4 and b.readiness() == "ok", timeout_s=30)
        assert sorted(tp.partition for tp in b.consumer.assignment()) == [0, 1, 2, 3]
        # Each assignment either member was given is counted, and the time until it was read again kept
        # (no rewind here).
        given = sum(
            r.getMessage() == "partitions assigned" and getattr(r, "fields", {}).get("group") == group
            for r in caplog.records
        )
        assert given >= 3  # a alone, both, b alone
        labels = {"group": group}
        assert REGISTRY.get_sample_value("stopline_consumer_assignments_total", labels) == given
        assert REGISTRY.get_sample_value("stopline_consumer_assignment_seconds_count", labels) == given
    finally:
        await _stopped(b, b_task)


async def test_a_long_session_does_not_make_a_rebalance_wait_longer(infra: Infra):
    """A member learns of a rebalance from its next heartbeat's answer, and the group waits for it: with
    a session of a minute (time for a static member to restart), a member joining still gets its share
    within seconds, not after a heartbeat interval grown with the session (12 s)."""
    topic = await _topic_with(infra, [], partitions=2)
    group = f"{infra.prefix}{f.unique('static')}"
    a, b = (_member(infra, topic, group, f.unique(name), session_timeout_ms=60_000) for name in "ab")
    a_task = await _joined(a)
    began = time.monotonic()
    b_task = asyncio.create_task(b.run())
    try:
        await asyncio.wait_for(b.started.wait(), 20)
        await eventually(
            lambda: (
                len(a.consumer.assignment()) == len(b.consumer.assignment()) == 1
                and a.readiness() == b.readiness() == "ok"
            ),
            timeout_s=30,
        )
        assert time.monotonic() - began < 6
    finally:
        await _stopped(a, a_task)
        await _stopped(b, b_task)


async def test_a_member_known_dead_is_taken_out_of_its_group_at_once_and_only_it(infra: Infra):
    # A session long enough that the partitions cannot have moved by the timeout alone.
    topic = await _topic_with(infra, [], partitions=4)
    group, other_group = (f"{infra.prefix}{f.unique('static')}" for _ in range(2))
    dead, alive = f.unique("a"), f.unique("b")  # names no earlier test's member still has
    a, b = (_member(infra, topic, group, name, session_timeout_ms=60_000) for name in (dead, alive))
    bystander = _member(infra, topic, other_group, alive, session_timeout_ms=60_000)  # b elsewhere
    tasks = [await _joined(runner) for runner in (a, b, bystander)]
    try:
        await eventually(lambda: len(b.consumer.assignment()) == 2, timeout_s=30)
        async with admin_client(infra.kafka) as admin:
            expeller = Expeller(admin, infra.prefix)
            # Nothing described before the end: nothing known of whom to remove, and nothing asked.
            blind = await expeller.expel(dead, ended_at=time.monotonic())
            assert (blind.unknown, blind.removed, blind.failed) == (True, [], [])
            await expeller.describe()  # as the supervisor's release does every few seconds
            await _stopped(a, tasks[0])  # a static member leaves nothing behind: as if killed
            ended = time.monotonic()
            first = await expeller.expel(dead, ended_at=ended)
            assert (first.unknown, first.removed, first.failed) == (False, [group], [])
            await expeller.describe()
            again = await expeller.expel(dead, ended_at=time.monotonic())
            assert (again.removed, again.failed) == ([], [])  # gone already: nothing to remove, no error
        await eventually(lambda: len(b.consumer.assignment()) == 4 and b.readiness() == "ok", timeout_s=20)
        assert sorted(tp.partition for tp in b.consumer.assignment()) == [0, 1, 2, 3]
        assert len(bystander.consumer.assignment()) == 4 and bystander.readiness() == "ok"
    finally:
        await _stopped(b, tasks[1])
        await _stopped(bystander, tasks[2])


async def test_a_removal_names_the_dead_process_so_one_started_again_keeps_its_place(infra: Infra):
    """The supervisor starts a process again while its release runs: if the new process has joined by
    then (the same instance name, a new member id), the removal of the dead one's member id is refused
    and the new process stays, with no rebalance. A description taken after the end (which shows the new
    process) is not the one the removal goes by."""
    topic = await _topic_with(infra, [], partitions=2)
    group = f"{infra.prefix}{f.unique('static')}"
    dead, alive = f.unique("a"), f.unique("b")
    a, b = (_member(infra, topic, group, name, session_timeout_ms=60_000) for name in (dead, alive))
    tasks = [await _joined(runner) for runner in (a, b)]
    again = _member(infra, topic, group, dead, session_timeout_ms=60_000)
    try:
        await eventually(lambda: len(b.consumer.assignment()) == 1, timeout_s=30)
        async with admin_client(infra.kafka) as admin:
            expeller = Expeller(admin, infra.prefix)
            await expeller.describe()  # as the supervisor's release does every few seconds
            old = [m for m in expeller.members[group] if m.startswith(f"{dead}-")]
            await _stopped(a, tasks[0])
            ended = time.monotonic()
            tasks[0] = await _joined(again)  # back before the release: it takes the dead one's place
            await expeller.describe()  # the background description, landing before the release starts
            now = [m for m in expeller.members[group] if m.startswith(f"{dead}-")]
            found = await expeller.expel(dead, ended_at=ended)
            # Refused: the instance is another process's now (the new member id was not asked for).
            assert (found.unknown, found.removed, found.failed) == (False, [], [])
        assert len(old) == len(now) == 1 and now != old
        assert len(again.consumer.assignment()) == 1 and again.readiness() == "ok"
    finally:
        await _stopped(again, tasks[0])
        await _stopped(b, tasks[1])


async def test_the_supervisor_release_takes_a_dead_child_out_by_its_instance_name(infra: Infra):
    topic = await _topic_with(infra, [], partitions=2)
    group = f"{infra.prefix}{f.unique('static')}"
    dead, alive = f.unique("a"), f.unique("b")
    a, b = (_member(infra, topic, group, name, session_timeout_ms=60_000) for name in (dead, alive))
    tasks = [await _joined(runner) for runner in (a, b)]
    release = GroupRelease(infra.kafka, infra.prefix, timeout_s=30)  # a cold start on a loaded machine
    try:
        await eventually(lambda: len(b.consumer.assignment()) == 1, timeout_s=30)
        await eventually(lambda: release.knows(group), timeout_s=30)  # its description every few seconds
        await _stopped(a, tasks[0])
        child = Child(dead, [], env={"STOPLINE_INSTANCE": dead})
        # As the supervisor calls it, from a thread of its own.
        await asyncio.to_thread(release, child, time.monotonic())
        labels = {"child": dead, "outcome": "removed"}
        assert REGISTRY.get_sample_value("stopline_supervisor_group_releases_total", labels) == 1
        await eventually(lambda: len(b.consumer.assignment()) == 2 and b.readiness() == "ok", timeout_s=20)
    finally:
        release.close()
        await _stopped(b, tasks[1])
