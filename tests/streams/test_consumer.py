"""The consumer runner: offsets are committed only after the handler's effect (also one still landing
when the handler returns), so a failed batch is read again, and a clean stop commits what was finished."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from services.kit import outages
from services.kit.errors import Unavailable
from streams import consumer as consumer_module
from streams.consumer import IDLE_AFTER_S, Batch, ConsumerRunner, OutOfGroup, _Listener
from tests import factories as f
from tests.conftest import Infra, plain_dsn
from tests.kafka_tools import broker_frozen, committed, eventually, member_that_never_rejoins, new_topic

pytestmark = pytest.mark.integration


async def _topic_with(infra: Infra, values: list[bytes], partitions: int = 2) -> str:
    name = await new_topic(infra, f"{infra.prefix}runner-{f.unique('t')}", partitions)
    await _produce(infra, name, values, partitions)
    return name


async def _produce(
    infra: Infra, topic: str, values: list[bytes], partitions: int = 2, keys: list[bytes] | None = None
) -> None:
    """The values in order, spread over the partitions by key (their `keys`, else by turns)."""
    keys = keys or [str(i % partitions).encode() for i in range(len(values))]
    producer = AIOKafkaProducer(**infra.kafka.options())
    await producer.start()
    try:
        for key, v in zip(keys, values, strict=True):
            await producer.send_and_wait(topic, v, key=key)
    finally:
        await producer.stop()


async def _markers(infra: Infra, topic: str, partitions: int = 2) -> list[bytes]:
    """A marker at the end of every partition: a runner that has handled them all has read everything
    before them (a partition is read in order), which is the barrier for "nothing else was read"."""
    markers = [f"marker-{f.unique('m')}-p{p}".encode() for p in range(partitions)]
    producer = AIOKafkaProducer(**infra.kafka.options())
    await producer.start()
    try:
        for partition, marker in enumerate(markers):
            await producer.send_and_wait(topic, marker, partition=partition)
    finally:
        await producer.stop()
    return markers


def _commits(runner: ConsumerRunner, effects: list[asyncio.Future[None]]) -> list[bool]:
    """Spy on the runner's commits (once its consumer exists): for each, whether every effect handed
    over so far had landed when it was sent."""
    calls: list[bool] = []
    commit = runner.consumer.commit

    async def spied(*args: Any, **kwargs: Any) -> None:
        calls.append(all(e.done() for e in effects))
        await commit(*args, **kwargs)

    runner.consumer.commit = spied
    return calls


def _polls(runner: ConsumerRunner) -> list[float]:
    """Spy on the runner's polls (once its consumer exists): when each began."""
    began: list[float] = []
    getmany = runner.consumer.getmany

    async def spied(*args: Any, **kwargs: Any) -> Any:
        began.append(time.monotonic())
        return await getmany(*args, **kwargs)

    runner.consumer.getmany = spied
    return began


def _runner(infra: Infra, topic: str, group: str, handle, **options) -> ConsumerRunner:
    return ConsumerRunner(kafka=infra.kafka, group_id=group, topics=[topic], handle=handle, **options)


async def _run_until(runner: ConsumerRunner, done: asyncio.Event, wait_s: float = 20) -> None:
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(done.wait(), wait_s)
    finally:
        runner.stop()
        await asyncio.wait_for(task, wait_s)


async def test_failed_batch_is_not_committed_and_is_read_again(infra):
    values = [f"m{i}".encode() for i in range(10)]
    topic = await _topic_with(infra, values)
    group = f.unique("g")

    async def failing(batch: Batch) -> None:
        raise RuntimeError("database down")

    runner = _runner(infra, topic, group, failing)
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(runner.run(), 20)

    seen: list[bytes] = []
    done = asyncio.Event()

    async def recording(batch: Batch) -> None:
        seen.extend(r.value for recs in batch.values() for r in recs)
        if len(seen) >= len(values):
            done.set()

    await _run_until(_runner(infra, topic, group, recording), done)
    assert sorted(seen) == sorted(values)


async def test_clean_stop_commits_finished_work_so_nothing_is_done_twice(infra):
    values = [f"m{i}".encode() for i in range(10)]
    topic = await _topic_with(infra, values)
    group = f.unique("g")
    seen: list[bytes] = []
    done = asyncio.Event()

    async def recording(batch: Batch) -> None:
        seen.extend(r.value for recs in batch.values() for r in recs)
        if len(seen) >= len(values):
            done.set()

    await _run_until(_runner(infra, topic, group, recording), done)
    again: list[bytes] = []

    async def second(batch: Batch) -> None:
        again.extend(r.value for recs in batch.values() for r in recs)

    runner = _runner(infra, topic, group, second)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.started.wait(), 10)
    markers = await _markers(infra, topic)
    await eventually(lambda: len(again) >= len(markers), timeout_s=20)
    runner.stop()
    await task
    assert sorted(seen) == sorted(values)
    assert sorted(again) == sorted(markers)  # read from the committed offsets: only what came after


@pytest.mark.alone  # it freezes the Kafka both workers share
async def test_a_commit_the_broker_does_not_answer_is_given_up_in_time_and_sent_again(infra):
    """aiokafka retries a commit for as long as the coordinator does not answer: the runner waits its
    request timeout at most (a revocation waiting on it would hold the whole group), counts it, and sends
    the same offsets again with its next commit, so nothing stays uncommitted once the broker answers."""
    values = [f"m{i}".encode() for i in range(6)]
    topic = await _topic_with(infra, values)
    group = f.unique("g")
    seen: list[bytes] = []
    runner = _runner(infra, topic, group, lambda batch: _record(seen, batch))
    runner.request_timeout_s = 1.0  # frozen longer than 4 s, a broker is fenced (broker_frozen)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.started.wait(), 20)
    commit = runner.consumer.commit
    sent: list[dict[TopicPartition, int]] = []
    waited: list[float] = []

    async def first_one_frozen(offsets: dict[TopicPartition, int]) -> None:
        sent.append(dict(offsets))
        if len(sent) > 1:
            await commit(offsets)
            return
        landing = asyncio.ensure_future(commit(offsets))
        began = time.monotonic()
        try:
            with broker_frozen():  # thawed when the runner gives up, or after 2.5 s on the old code
                await asyncio.wait({landing}, timeout=2.5)
        finally:
            waited.append(time.monotonic() - began)
            # The next commit may wait for this one's request, still landing under aiokafka's lock: not
            # to be given up too on a busy machine.
            runner.request_timeout_s = 10.0
        await landing

    runner.consumer.commit = first_one_frozen
    try:
        await _produce(infra, topic, [b"after"])
        await eventually(lambda: len(sent) >= 2, timeout_s=20)
        assert waited[0] < 2.0  # given up at the request timeout, not when the broker answered
        assert all(sent[1].get(tp, -1) >= o for tp, o in sent[0].items())  # sent again (or later ones)
        timed_out = REGISTRY.get_sample_value("stopline_consumer_commits_timed_out_total", {"group": group})
        assert timed_out == 1

        async def all_committed() -> bool:
            return await _committed(infra, topic, group) == len(values) + 1

        await eventually(all_committed, timeout_s=20)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 20)
    assert sorted(seen) == sorted([*values, b"after"])


async def test_retries_are_bounded_then_the_runner_stops(infra):
    topic = await _topic_with(infra, [b"x"])
    calls = 0

    async def flaky(batch: Batch) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("still down")

    runner = _runner(infra, topic, f.unique("g"), flaky, attempts=3)
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(runner.run(), 30)
    assert calls == 3


async def test_an_outage_is_retried_for_as_long_as_it_lasts_and_the_runner_is_not_ready_meanwhile(infra):
    """The database is down (nothing listens where the handler connects) far past `attempts`: the batch
    is retried until it is back, the runner says it is not ready meanwhile, then handles and commits it."""
    topic = await _topic_with(infra, [b"x", b"y"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # free once closed: connecting there is refused
    down = make_url(plain_dsn(infra.database_url)).set(port=closed).render_as_string(hide_password=False)
    target = {"dsn": down}
    calls = 0
    seen: list[bytes] = []

    async def storing(batch: Batch) -> None:
        nonlocal calls
        calls += 1
        connection = await asyncpg.connect(target["dsn"], timeout=5)
        try:
            await connection.execute("select 1")
        finally:
            await connection.close()
        await _record(seen, batch)

    runner = _runner(infra, topic, f.unique("g"), storing, attempts=2, retry_while=outages.unavailable)
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: calls >= 6, timeout_s=30)  # three times `attempts`, and still going
        assert not task.done()
        assert runner.readiness() != "ok"
        target["dsn"] = plain_dsn(infra.database_url)  # the database is back
        await eventually(lambda: len(seen) == 2, timeout_s=30)
        assert await eventually(lambda: _committed(infra, topic, runner.group_id), timeout_s=10) == 2
        assert runner.readiness() == "ok"
    finally:
        runner.stop()
        await asyncio.wait_for(task, 20)


async def test_a_batch_retried_for_a_failure_of_its_own_leaves_the_runner_ready(infra):
    """A failure that is no outage (a bad record, say, retried before it is set aside or stops the runner)
    says nothing of the instance: it stays ready, and its Service keeps sending it requests. (Before, any
    retry made it not ready: an alerts consumer retrying one poison alert for ~6 s left its Service.)"""
    topic = await _topic_with(infra, [b"x"], partitions=1)
    calls = 0
    second_attempt, let_go = asyncio.Event(), asyncio.Event()

    async def failing_once(batch: Batch) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("a bad record")
        second_attempt.set()
        await let_go.wait()

    runner = _runner(infra, topic, f.unique("g"), failing_once, attempts=3, retry_while=outages.unavailable)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(second_attempt.wait(), 30)  # the retry is under way: the first failed
        assert runner.readiness() == "ok"
        let_go.set()
        assert await eventually(lambda: _committed(infra, topic, runner.group_id), timeout_s=10) == 1
    finally:
        let_go.set()
        runner.stop()
        await asyncio.wait_for(task, 20)


async def test_a_batch_retried_through_an_outage_is_given_up_for_a_rebalance(infra):
    """The whole group waits for a member's revocation, which waits for the batch in hand: one retried
    until the database is back would hold a joining member out for the outage (up to the rebalance
    timeout). It is given up instead, uncommitted, and read again by whoever the group gives it."""
    values = [f"v{i}".encode() for i in range(4)]
    topic = await _topic_with(infra, values)
    group = f.unique("g")
    down = True
    seen: list[bytes] = []

    async def storing(batch: Batch) -> None:
        if down:
            raise Unavailable("database unavailable")
        await _record(seen, batch)

    abandoned = functools.partial(
        REGISTRY.get_sample_value, "stopline_consumer_batches_abandoned_total", {"group": group}
    )
    a = _runner(infra, topic, group, storing, retry_while=outages.unavailable)
    b = _runner(infra, topic, group, storing, retry_while=outages.unavailable)
    tasks = [asyncio.create_task(a.run())]
    try:
        await eventually(lambda: a.retrying, timeout_s=20)  # the database is down: A retries its batch
        tasks.append(asyncio.create_task(b.run()))

        # Well inside the 30 s rebalance timeout, with the outage still on: B is in the group with a
        # partition of its own.
        def split() -> bool:
            if not (a.in_group and b.in_group):  # B's consumer is made when it starts
                return False
            mine, theirs = a.consumer.assignment(), b.consumer.assignment()
            return len(mine | theirs) == 2 and not mine & theirs

        await eventually(split, timeout_s=15)
        assert (abandoned() or 0) >= 1 and seen == []
        down = False
        await eventually(lambda: len(seen) == len(values), timeout_s=20)
        assert await eventually(lambda: _committed(infra, topic, group), timeout_s=10) == len(values)
        assert sorted(seen) == sorted(values)  # each once: the given-up batch had no effect
    finally:
        a.stop()
        b.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)


async def test_a_failure_that_is_not_an_outage_still_stops_after_its_attempts(infra):
    topic = await _topic_with(infra, [b"x"])
    calls = 0

    async def buggy(batch: Batch) -> None:
        nonlocal calls
        calls += 1
        raise KeyError("a bug, not an outage")

    runner = _runner(infra, topic, f.unique("g"), buggy, attempts=3, retry_while=outages.unavailable)
    with pytest.raises(KeyError):
        await asyncio.wait_for(runner.run(), 30)
    assert calls == 3


async def test_a_commit_interval_defers_commits_but_a_stop_commits_everything_finished(infra):
    values = [f"m{i}".encode() for i in range(10)]
    topic = await _topic_with(infra, values)
    group = f.unique("g")
    seen: list[bytes] = []
    # After the first commit, none is due again during the test.
    runner = _runner(infra, topic, group, lambda batch: _record(seen, batch), commit_interval_ms=600_000)
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: len(seen) == 10, timeout_s=20)
        # The first batch's commit is due at once (whatever the clock): it is made.
        first = await eventually(lambda: _committed(infra, topic, runner.group_id), timeout_s=10)
        polls = _polls(runner)
        await _produce(infra, topic, [f"late{i}".encode() for i in range(4)])
        await eventually(lambda: len(seen) == 14, timeout_s=20)
        # Barrier: the loop polled again after handling them, and the input is quiet; the interval has
        # not passed, so what was handled is held, not committed.
        handled_at = time.monotonic()
        await eventually(lambda: len([p for p in polls if p > handled_at]) >= 2, timeout_s=10)
        assert runner.finished
        assert 0 < first == await _committed(infra, topic, runner.group_id) < 14
    finally:
        runner.stop()
        await asyncio.wait_for(task, 20)

    again: list[bytes] = []
    second = _runner(infra, topic, group, lambda batch: _record(again, batch))
    task = asyncio.create_task(second.run())
    await asyncio.wait_for(second.started.wait(), 10)
    markers = await _markers(infra, topic)
    await eventually(lambda: len(again) >= len(markers), timeout_s=20)
    second.stop()
    await task
    assert sorted(again) == sorted(markers)  # the stop had committed all 14


async def test_effects_still_landing_let_the_next_batch_go_on_and_are_committed_once_landed(infra):
    topic = await _topic_with(infra, [])
    seen: list[bytes] = []
    landings: list[asyncio.Future[None]] = []

    async def landing_later(batch: Batch) -> asyncio.Future[None]:
        await _record(seen, batch)
        landings.append(asyncio.get_running_loop().create_future())
        return landings[-1]

    def land_all() -> None:
        for landing in landings:
            if not landing.done():
                landing.set_result(None)

    runner = _runner(infra, topic, f.unique("g"), landing_later, commit_interval_ms=600_000)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(runner.started.wait(), 10)
        commits = _commits(runner, landings)
        await _produce(infra, topic, [b"first"])  # one record: one batch
        await eventually(lambda: seen == [b"first"], timeout_s=20)
        # The first commit is due, but waits for the effect: it is sent once the effect landed.
        land_all()
        await eventually(lambda: _committed(infra, topic, runner.group_id), timeout_s=10)
        await _produce(infra, topic, [f"late{i}".encode() for i in range(7)])
        # Handled although the effects of the batches before have not landed: no wait per batch.
        await eventually(lambda: len(seen) == 8, timeout_s=20)
        runner.stop()  # the stop commits, so it waits for what is landing
        land_all()
        await asyncio.wait_for(task, 20)
    finally:
        land_all()
        runner.stop()
        await asyncio.wait_for(task, 20)
    assert len(commits) >= 2 and all(commits), "a commit was sent while an effect was still landing"
    assert await _committed(infra, topic, runner.group_id) == 8


async def test_an_effect_that_fails_to_land_stops_the_runner_and_its_batch_is_read_again(infra, caplog):
    values = [f"m{i}".encode() for i in range(10)]
    topic = await _topic_with(infra, values)
    group = f.unique("g")

    async def never_lands(batch: Batch) -> asyncio.Future[None]:
        landing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        landing.set_exception(Unavailable("Kafka did not acknowledge in time"))
        return landing

    with pytest.raises(Unavailable):
        await asyncio.wait_for(_runner(infra, topic, group, never_lands).run(), 20)
    [stopped] = [r for r in caplog.records if r.getMessage() == "consumer stopped on an error"]
    assert stopped.exc_info and stopped.exc_info[0] is Unavailable  # logged once, with its cause
    seen: list[bytes] = []
    done = asyncio.Event()

    async def recording(batch: Batch) -> None:
        await _record(seen, batch)
        if len(seen) >= len(values):
            done.set()

    await _run_until(_runner(infra, topic, group, recording), done)
    assert sorted(seen) == sorted(values)


async def test_an_effect_failing_under_a_rebalance_stops_the_runner_before_anything_else(infra):
    topic = await _topic_with(infra, [])
    landings: list[asyncio.Future[None]] = []
    told: list[str] = []

    async def landing_later(batch: Batch) -> asyncio.Future[None]:
        landings.append(asyncio.get_running_loop().create_future())
        return landings[-1]

    class Owner:
        async def assigned(self, partitions: set[TopicPartition]) -> None:
            pass

        async def revoked(self, partitions: set[TopicPartition], *, leaving: bool = False) -> None:
            told.append("revoked")  # would snapshot state holding the lost batch

    async def idle() -> None:
        told.append("idle")  # would snapshot too

    runner = _runner(
        infra, topic, f.unique("g"), landing_later, owner=Owner(), on_idle=idle, commit_interval_ms=600_000
    )
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.started.wait(), 10)
    await _produce(infra, topic, [b"first"])
    await eventually(lambda: landings, timeout_s=20)
    landings[0].set_result(None)  # the first commit, due at once, goes through
    await eventually(lambda: _committed(infra, topic, runner.group_id), timeout_s=10)
    await _produce(infra, topic, [b"second"])
    await eventually(lambda: len(landings) == 2, timeout_s=20)  # handled; not committed (interval)
    told.clear()  # the input may have looked quiet before the second batch: idle was right then
    polls = _polls(runner)
    landings[1].set_exception(Unavailable("Kafka did not acknowledge in time"))
    # Barrier: the loop has polled twice since the input became quiet (no record for IDLE_AFTER_S), where
    # it would have told the idle hook had it not held the failed effect.
    quiet_from = time.monotonic() + IDLE_AFTER_S
    await eventually(lambda: len([p for p in polls if p > quiet_from]) >= 2, timeout_s=IDLE_AFTER_S + 10)
    with pytest.raises(Unavailable):  # as aiokafka would meet it: it logs and goes on
        await _Listener(runner).on_partitions_revoked(runner.consumer.assignment())
    with pytest.raises(Unavailable):
        await asyncio.wait_for(task, 20)
    assert told == []
    assert await _committed(infra, topic, runner.group_id) == 1


async def test_a_batch_polled_before_a_revocation_is_not_handled_after_it(infra):
    """A poll hands over a batch while the revocation holds the lock; the join then takes the batch's
    partition away. The batch is dropped (read again where its partition stays), not handled on a
    partition no longer held: aiokafka asserted on its highwater, and the runner stopped (a chaos run's
    coordination instance was out for a minute)."""
    topic = await _topic_with(infra, [], partitions=1)
    handled: list[bytes] = []
    release = asyncio.Event()

    class Owner:
        async def assigned(self, partitions: set[TopicPartition]) -> None:
            pass

        async def revoked(self, partitions: set[TopicPartition], *, leaving: bool = False) -> None:
            await release.wait()  # (a snapshot being written, say)

    runner = _runner(infra, topic, f.unique("g"), functools.partial(_record, handled), owner=Owner())
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: runner.in_group, timeout_s=20)
        revoking: list[asyncio.Task[None]] = []
        holding = asyncio.Event()  # the revocation holds the lock, the batch is on its way to the loop
        polls: list[int] = []  # records in each batch a poll handed over
        began: list[float] = []
        getmany = runner.consumer.getmany

        async def spied(*args: Any, **kwargs: Any) -> Any:
            began.append(time.monotonic())
            batch = await getmany(*args, **kwargs)
            polls.append(sum(len(records) for records in batch.values()))
            if polls[-1] and not revoking:  # the group's revocation takes the lock before the loop
                held = runner.consumer.assignment()
                revoking.append(asyncio.create_task(_Listener(runner).on_partitions_revoked(held)))
                await eventually(lambda: runner.lock.locked())
                holding.set()
            return batch

        runner.consumer.getmany = spied
        # A poll begun before the spy would hand the record over unseen: produced once the spy polls.
        await eventually(lambda: began, timeout_s=20)
        await _produce(infra, topic, [b"stale"], partitions=1)
        await asyncio.wait_for(holding.wait(), 20)
        runner.consumer._subscription.assign_from_subscribed(set())  # as the join that follows does
        release.set()
        await asyncio.wait_for(revoking[0], 10)
        n = len(polls)
        await eventually(lambda: len(polls) >= n + 2, timeout_s=20)  # barrier: polled on since
        assert not task.done()
        assert handled == []
    finally:
        release.set()
        runner.stop()
        await asyncio.wait_for(task, 20)


async def test_a_slow_revocation_is_measured_and_logged_with_where_its_time_went(infra, caplog):
    """The whole group waits for each member's revocation: its time is a metric, and one that takes long is
    logged with its spans (here a batch in hand, then the owner's state), not only its total."""
    caplog.set_level(logging.WARNING, logger="streams.consumer")
    topic = await _topic_with(infra, [], partitions=1)

    class Owner:
        async def assigned(self, partitions: set[TopicPartition]) -> None:
            pass

        async def revoked(self, partitions: set[TopicPartition], *, leaving: bool = False) -> None:
            if not leaving:
                await asyncio.sleep(0.7)  # a snapshot being written, say

    runner = _runner(infra, topic, f.unique("g"), functools.partial(_record, []), owner=Owner())

    def measured() -> tuple[float, float]:  # revocations timed, and their seconds
        labels = {"group": runner.group_id}
        count = REGISTRY.get_sample_value("stopline_consumer_revocation_seconds_count", labels)
        return count or 0, REGISTRY.get_sample_value("stopline_consumer_revocation_seconds_sum", labels) or 0

    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: runner.in_group, timeout_s=20)
        before = measured()
        async with runner.lock:  # a batch in hand
            revoking = asyncio.create_task(
                _Listener(runner).on_partitions_revoked(runner.consumer.assignment())
            )
            await asyncio.sleep(0.6)
        await asyncio.wait_for(revoking, 10)
        after = measured()
        [slow] = [
            r.fields
            for r in caplog.records
            if r.getMessage() == "slow revocation" and r.fields["group"] == runner.group_id
        ]
    finally:
        runner.stop()
        await asyncio.wait_for(task, 20)
    assert slow["n"] == 1 and slow["batch"] >= 0.5 and slow["commit"] < 0.5 and slow["owner"] >= 0.6
    assert after[0] - before[0] == 1
    assert after[1] - before[1] >= 1.1 and slow["seconds"] == pytest.approx(after[1] - before[1], abs=0.01)


async def test_a_batch_whose_partition_is_taken_away_while_it_runs_does_not_stop_the_runner(infra):
    """(The lag gauge asked aiokafka for the partition's highwater, which asserts it is held.)"""
    topic = await _topic_with(infra, [], partitions=1)
    handled: list[bytes] = []

    async def handle(batch: Batch) -> None:
        handled.extend(r.value for records in batch.values() for r in records)
        runner.consumer._subscription.assign_from_subscribed(set())  # as a join completing meanwhile

    runner = _runner(infra, topic, f.unique("g"), handle)
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: runner.in_group, timeout_s=20)
        polls = _polls(runner)
        await _produce(infra, topic, [b"taken-away"], partitions=1)
        await eventually(lambda: handled, timeout_s=20)
        n = len(polls)
        await eventually(lambda: len(polls) >= n + 2, timeout_s=20)  # barrier: polled on since
        assert not task.done()
        assert handled == [b"taken-away"]
        assert (
            REGISTRY.get_sample_value(
                "stopline_consumer_records_total", {"group": runner.group_id, "topic": topic}
            )
            == 1
        )
    finally:
        runner.stop()
        await asyncio.wait_for(task, 20)


async def _record(into: list[bytes], batch: Batch) -> None:
    into.extend(r.value for recs in batch.values() for r in recs)


async def _committed(infra: Infra, topic: str, group: str) -> int:
    return await committed(infra.kafka, group, topic)


def _fail_polls(
    runner: ConsumerRunner, times: int | None, error: str = "join group: unknown error"
) -> asyncio.Task[None]:
    """Hand the runner's poller group failures the way aiokafka's group task does (one JoinGroup answered
    with an unknown error, say), each once the last was read; `times` of them, or without end."""

    async def hand_over() -> None:
        n = 0
        while times is None or n < times:
            n += 1
            await runner.consumer._coordinator._push_error_to_user(KafkaError(error))

    return asyncio.create_task(hand_over())


async def test_a_group_failure_handed_to_the_poller_is_polled_past(infra):
    topic = await _topic_with(infra, [])
    group = f.unique("g")
    seen: list[bytes] = []
    runner = _runner(infra, topic, group, lambda batch: _record(seen, batch))
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: runner.readiness() == "ok", timeout_s=30)
        failing = _fail_polls(runner, 2)
        await asyncio.wait_for(failing, 20)  # both read by the poller
        markers = await _markers(infra, topic)
        await eventually(lambda: set(markers) <= set(seen), timeout_s=20)
        assert not task.done()
        # Counted (a failure can reach the poller twice: at its next poll, and in a wait for an assignment).
        failures = REGISTRY.get_sample_value("stopline_consumer_poll_failures_total", {"group": group})
        assert (failures or 0) >= 2
    finally:
        runner.stop()
        await asyncio.wait_for(task, 20)


async def test_a_group_failure_that_keeps_coming_stops_the_runner(infra):
    topic = await _topic_with(infra, [])
    runner = _runner(infra, topic, f.unique("g"), lambda batch: _record([], batch), poll_failing_max_s=2.0)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.started.wait(), 20)
    failing = _fail_polls(runner, None)
    began = time.monotonic()
    try:
        with pytest.raises(KafkaError):
            await asyncio.wait_for(task, 60)
    finally:
        failing.cancel()
    assert time.monotonic() - began >= 2.0  # polled again meanwhile, not given up at once
    failures = REGISTRY.get_sample_value("stopline_consumer_poll_failures_total", {"group": runner.group_id})
    assert (failures or 0) >= 2


@pytest.mark.alone  # it freezes the Kafka both workers share
async def test_a_runner_that_cannot_reach_kafka_as_it_starts_waits_for_it(infra, monkeypatch):
    """Kafka not answering as an instance (re)starts: the runner's start waits it out, as its polls do,
    rather than ending at once (which ends the process: a scorer then reloads its model and state)."""
    topic = await _topic_with(infra, [b"before the start"])
    seen: list[bytes] = []
    runner = _runner(
        infra, topic, f.unique("g"), lambda batch: _record(seen, batch), request_timeout_ms=1_000
    )
    starts: list[AIOKafkaConsumer] = []

    class Counted(AIOKafkaConsumer):  # the real client; each start attempt makes one
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            starts.append(self)

    monkeypatch.setattr(consumer_module, "AIOKafkaConsumer", Counted)
    with broker_frozen():
        task = asyncio.create_task(runner.run())
        await eventually(lambda: len(starts) >= 2, timeout_s=3.5)  # one attempt unanswered, then another
        assert not task.done()
    try:
        await eventually(lambda: seen == [b"before the start"], timeout_s=30)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 20)


async def test_a_dead_group_task_stops_the_runner_at_once(infra):
    """aiokafka's group task, ended by an unexpected error, is never started again: the consumer would
    never rejoin, so the runner stops on the first poll that says so (its process starts again), not
    after polling past it for `poll_failing_max_s`."""
    topic = await _topic_with(infra, [])
    runner = _runner(infra, topic, f.unique("g"), lambda batch: _record([], batch))
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.started.wait(), 20)
    dead = "Unexpected error during coordination RuntimeError('the handler is closed')"
    failing = _fail_polls(runner, None, dead)
    try:
        with pytest.raises(KafkaError, match="Unexpected error during coordination"):
            await asyncio.wait_for(task, runner.poll_failing_max_s / 2)
    finally:
        failing.cancel()
    failures = REGISTRY.get_sample_value("stopline_consumer_poll_failures_total", {"group": runner.group_id})
    assert not failures  # not polled again


# A runner kept out of its group has its JoinGroup in flight (the broker holds it for the member that never
# rejoins), and aiokafka's stop waits for it to time out: the request timeout, 10 s by default, spent on
# every such test's stop. Shorter here, and still longer than the bound the runner is out for.
_JOIN_WAIT_MS = 3_000


async def test_a_runner_the_group_assigns_nothing_for_too_long_stops(infra):
    """A runner kept out of its group stops after `assignment_wait_max_s` (its process starts again and
    rejoins) rather than waiting, never ready, for as long as aiokafka does."""
    topic = await _topic_with(infra, [b"a"])
    group = f.unique("g")
    async with member_that_never_rejoins(infra, topic, group):
        runner = _runner(
            infra,
            topic,
            group,
            lambda batch: _record([], batch),
            assignment_wait_max_s=2.0,
            request_timeout_ms=_JOIN_WAIT_MS,
        )
        began = time.monotonic()
        with pytest.raises(OutOfGroup):
            await asyncio.wait_for(runner.run(), 30)
        assert time.monotonic() - began >= 2.0


def _getmany_tasks() -> set[asyncio.Task[Any]]:
    return {
        t
        for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__qualname__", "") == "AIOKafkaConsumer.getmany"
    }


async def test_a_runner_cancelled_while_it_waits_for_the_group_leaves_no_poll_behind(infra):
    """A service stopping cancels its runners; one waiting for an assignment (aiokafka's poll waits with no
    bound) must not leave that poll running on the stopped consumer."""
    topic = await _topic_with(infra, [b"a"])
    group = f.unique("g")
    async with member_that_never_rejoins(infra, topic, group):
        before = _getmany_tasks()
        runner = _runner(
            infra, topic, group, lambda batch: _record([], batch), request_timeout_ms=_JOIN_WAIT_MS
        )
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(runner.started.wait(), 20)
        await eventually(lambda: _getmany_tasks() - before, timeout_s=10)  # its poll, waiting for the group
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        left = _getmany_tasks() - before
        if left:
            await asyncio.wait(left, timeout=5)
        assert [t for t in left if not t.done()] == []
        assert not runner.in_group


async def test_a_loop_that_did_not_run_does_not_count_as_time_out_of_the_group(infra):
    """Only the event loop's running time counts: a test session's loop held by a synchronous test for
    minutes (its in-process runners then stopped for good), or a stopped process, is not a group that
    keeps the runner out."""
    topic = await _topic_with(infra, [])
    seen: list[bytes] = []
    runner = _runner(
        infra, topic, f.unique("g"), lambda batch: _record(seen, batch), assignment_wait_max_s=1.0
    )
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: runner.readiness() == "ok", timeout_s=30)
        time.sleep(2.5)  # noqa: ASYNC251 - the point: the loop does not run (under the session timeout)
        markers = await _markers(infra, topic)
        await eventually(lambda: set(markers) <= set(seen), timeout_s=20)
        assert not task.done()
    finally:
        runner.stop()
        await asyncio.wait_for(task, 20)


class SnapshotNotRead(Exception):
    pass


async def test_an_assignment_whose_state_is_not_restored_stops_the_runner_and_nothing_is_read(infra):
    """aiokafka swallows a listener's failure: a member whose rewind failed (its snapshot not read while a
    node was down) would read on without its state. The runner stops instead, having handled nothing."""
    topic = await _topic_with(infra, [b"a", b"b"])
    seen: list[bytes] = []

    async def unreadable(committed: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
        raise SnapshotNotRead

    runner = _runner(infra, topic, f.unique("g"), lambda batch: _record(seen, batch), rewind=unreadable)
    with pytest.raises(SnapshotNotRead):
        await asyncio.wait_for(runner.run(), 30)
    assert seen == []
    assert runner.readiness() != "ok"
    assert await _committed(infra, topic, runner.group_id) == 0


async def test_an_assignment_not_restored_for_a_kafka_outage_is_tried_again_not_given_up(infra):
    """A node down can keep a member's snapshots from being read in time: stopping would restart the
    process, which meets the same outage and restores everything again while the group's partitions wait.
    The member tries again, its partitions paused, and reads from where the rewind says once it works."""
    topic = await _topic_with(infra, [b"a", b"b", b"c"], partitions=1)
    group = f.unique("g")
    seen: list[bytes] = []
    failures = 2

    async def flaky(committed: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
        nonlocal failures
        if failures:
            failures -= 1
            raise KafkaTimeoutError
        return {tp: 1 for tp in committed}  # the state already holds the first record

    retried = functools.partial(
        REGISTRY.get_sample_value, "stopline_consumer_rewinds_retried_total", {"group": group}
    )
    runner = _runner(infra, topic, group, lambda batch: _record(seen, batch), rewind=flaky)
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: _committed(infra, topic, group), timeout_s=30)
        await eventually(lambda: seen == [b"b", b"c"], timeout_s=10)
        assert runner.readiness() == "ok" and not task.done()
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
    assert retried() == 2 and failures == 0
    assert await _committed(infra, topic, group) == 3


async def test_an_assignment_not_restored_past_the_bound_stops_the_runner(infra):
    topic = await _topic_with(infra, [b"a"])
    seen: list[bytes] = []

    async def unreachable(committed: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
        raise KafkaTimeoutError

    group = f.unique("g")
    runner = _runner(
        infra, topic, group, lambda batch: _record(seen, batch), rewind=unreachable, poll_failing_max_s=2
    )
    began = time.monotonic()
    with pytest.raises(KafkaTimeoutError):
        await asyncio.wait_for(runner.run(), 30)
    assert time.monotonic() - began >= 2  # tried again meanwhile, then given up
    retried = REGISTRY.get_sample_value("stopline_consumer_rewinds_retried_total", {"group": group})
    assert retried is not None and retried >= 2
    assert seen == []


async def test_an_assignment_rewound_past_the_committed_offsets_commits_them(infra):
    """A snapshot taken after a refused commit is ahead of the group's offsets (its records' effects
    landed): the member reads on from it, and commits it at once, or the group would show that lag for
    ever when nothing follows."""
    topic = await _topic_with(infra, [b"a", b"b"], partitions=1)
    seen: list[bytes] = []

    async def past_both(committed: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
        return {tp: 2 for tp in committed}  # the state already holds both records

    runner = _runner(infra, topic, f.unique("g"), lambda batch: _record(seen, batch), rewind=past_both)
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: _committed(infra, topic, runner.group_id), timeout_s=30)
        assert await _committed(infra, topic, runner.group_id) == 2
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
    assert seen == []  # nothing read again


async def test_records_read_again_below_the_committed_offset_never_move_the_group_back(infra):
    """A rewind from an older snapshot reads again records the group had committed: one batch at a time,
    they are handled and the owner is told each landed, but no commit goes below where the group was (a
    next owner would replay less and send its output again). Past it, commits go on."""
    topic = await _topic_with(infra, [b"a", b"b", b"c", b"d"], partitions=1)
    group = f.unique("g")
    first = _runner(infra, topic, group, functools.partial(_record, []))

    async def all_four_committed() -> bool:
        return await _committed(infra, topic, group) == 4

    task = asyncio.create_task(first.run())
    try:
        await eventually(all_four_committed, timeout_s=30)
    finally:
        first.stop()
        await asyncio.wait_for(task, 30)
    await _produce(infra, topic, [b"e"], partitions=1)

    seen: list[bytes] = []
    landed: list[int] = []
    commits: list[int] = []

    async def older_snapshot(offsets: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
        real = runner.consumer.commit

        async def commit(to: dict[TopicPartition, int]) -> None:  # the real commit, its offsets noted
            commits.extend(to.values())
            await real(to)

        runner.consumer.commit = commit
        return {tp: 1 for tp in offsets}

    async def after_commit(offsets: dict[TopicPartition, int]) -> None:
        landed.extend(offsets.values())

    runner = _runner(
        infra,
        topic,
        group,
        lambda batch: _record(seen, batch),
        rewind=older_snapshot,
        after_commit=after_commit,
        max_records=1,
    )
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: landed[-1:] == [5], timeout_s=30)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
    assert seen == [b"b", b"c", b"d", b"e"]
    assert landed == [2, 3, 4, 5] and commits == [4, 5]
    assert await _committed(infra, topic, group) == 5


async def test_a_rewind_longer_than_the_session_timeout_keeps_the_member_in_its_group(infra):
    """Restoring state can take longer than the session timeout, and aiokafka sends no heartbeat while an
    assignment callback runs: done there, the member was expelled before it could commit, rejoined,
    restored again, and so on. Done by the loop, with the partitions paused, it is restored once, reads
    from where the rewind said, and commits."""
    topic = await _topic_with(infra, [b"a", b"b", b"c"], partitions=1)
    seen: list[bytes] = []
    rewinds = 0
    session_s = infra.kafka.session_timeout_ms / 1000

    async def slow(committed: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
        nonlocal rewinds
        rewinds += 1
        await asyncio.sleep(session_s + 3)
        return {tp: 1 for tp in committed}  # the state already holds the first record

    runner = _runner(infra, topic, f.unique("g"), lambda batch: _record(seen, batch), rewind=slow)
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: _committed(infra, topic, runner.group_id), timeout_s=60)
        await eventually(lambda: seen == [b"b", b"c"], timeout_s=10)
        assert runner.readiness() == "ok"
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
    assert rewinds == 1  # never expelled, so never assigned again
    assert await _committed(infra, topic, runner.group_id) == 3


async def test_while_one_input_is_read_again_the_others_wait_for_the_records_it_had_handled(infra):
    """Co-partitioned inputs (a person's calls and payments) are fetched apart. After a restore from an
    older snapshot, a payment the previous owner never handled must not reach the owner's state before
    the calls it did handle, which are being read again: it would be scored without them. It waits,
    fetched and put back, and comes after them; nothing is lost or read twice."""
    calls = await _topic_with(infra, [b"call-%d" % i for i in range(40)], partitions=1)
    payments = await _topic_with(infra, [b"pay-0", b"pay-1", b"pay-2"], partitions=1)
    group = f.unique("g")
    c0, p0 = TopicPartition(calls, 0), TopicPartition(payments, 0)
    previous = AIOKafkaConsumer(**infra.kafka.options(), group_id=group, enable_auto_commit=False)
    await previous.start()
    try:  # the previous owner handled every call and the first payment
        previous.assign([c0, p0])
        await previous.commit({c0: 40, p0: 1})
    finally:
        await previous.stop()
    seen: list[bytes] = []

    async def older_snapshot(committed: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
        return {c0: 0, p0: 0}

    held = functools.partial(REGISTRY.get_sample_value, "stopline_consumer_records_held_back_total")
    runner = ConsumerRunner(
        kafka=infra.kafka,
        group_id=group,
        topics=[calls, payments],
        handle=lambda batch: _record(seen, batch),
        rewind=older_snapshot,
        max_records=1,
    )
    # One record per partition and fetch: the payments' fetches come with the first calls, every time.
    runner._options["max_partition_fetch_bytes"] = 1
    task = asyncio.create_task(runner.run())
    try:

        async def both_read() -> bool:
            return (await _committed(infra, calls, group), await _committed(infra, payments, group)) == (
                40,
                3,
            )

        await eventually(both_read, timeout_s=30)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
    assert (held({"group": group}) or 0) > 0  # the payments came early and were put back
    assert sorted(seen) == sorted([b"call-%d" % i for i in range(40)] + [b"pay-0", b"pay-1", b"pay-2"])
    assert seen.index(b"pay-1") > seen.index(b"call-39")


async def _set_aside_into(into: list[tuple[bytes, str]], record: Any, exc: Exception) -> None:
    into.append((record.value, type(exc).__name__))


async def test_a_second_record_in_a_row_failing_alone_on_the_same_error_stops_the_runner(infra):
    """A failure no outage check knows (a database refusing in a way not listed) fails every record alike,
    good ones too: setting each aside would drop them all. A record failing on another error than the one
    set aside before it is set aside, and so is one under the same key (the same poison: a later record of
    the same thing); the next in a row failing on the same error under another key stops the runner instead,
    nothing of it or after it committed: read again at the next start."""
    values = [b"good", b"bug", b"refused-1", b"refused-1 again", b"refused-2", b"after"]
    topic = await new_topic(infra, f"{infra.prefix}runner-{f.unique('t')}", 1)
    # Each under a key of its own but the poison's later record (a revision of the same thing).
    keys = [b"good", b"bug", b"refused-1", b"refused-1", b"refused-2", b"after"]
    await _produce(infra, topic, values, partitions=1, keys=keys)
    group = f.unique("g")
    seen: list[bytes] = []
    aside: list[tuple[bytes, str]] = []

    async def handle(batch: Batch) -> None:
        for record in (r for records in batch.values() for r in records):
            if record.value == b"bug":
                raise KeyError("a bug this record meets")
            if record.value.startswith(b"refused"):
                raise RuntimeError("refused, as every record would be")
        await _record(seen, batch)

    runner = _runner(infra, topic, group, handle, set_aside=functools.partial(_set_aside_into, aside))
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(runner.run(), 30)
    assert aside == [
        (b"bug", "KeyError"),
        (b"refused-1", "RuntimeError"),
        (b"refused-1 again", "RuntimeError"),
    ]
    assert seen == [b"good"]
    assert await _committed(infra, topic, group) == 4  # from refused-2 on, read again


async def test_a_stop_between_records_handled_one_at_a_time_is_not_held_for_the_rest(infra):
    """A batch failed and its records are handled one at a time: a stop asked meanwhile ends it after the
    record in hand, which is committed; the records after it are left for the next start."""
    values = [b"a", b"b", b"c", b"bad"]
    topic = await _topic_with(infra, values, partitions=1)
    group = f.unique("g")
    alone: list[bytes] = []
    aside: list[tuple[bytes, str]] = []

    async def handle(batch: Batch) -> None:
        records = [r.value for rs in batch.values() for r in rs]
        if b"bad" in records:
            raise KeyError("a bug this record meets")
        alone.extend(records)
        if records == [b"b"]:
            runner.stop()

    runner = _runner(infra, topic, group, handle, set_aside=functools.partial(_set_aside_into, aside))
    await asyncio.wait_for(runner.run(), 30)
    assert alone == [b"a", b"b"] and aside == []
    assert await _committed(infra, topic, group) == 2


class _Owner:
    async def assigned(self, partitions: set[TopicPartition]) -> None:
        pass

    async def revoked(self, partitions: set[TopicPartition], *, leaving: bool = False) -> None:
        pass


async def test_set_aside_is_refused_to_an_owner_of_per_partition_state(infra):
    """Its failed attempt may have half-applied the owner's state: going on past the record is not safe."""

    async def handle(batch: Batch) -> None:
        pass

    async def rewind(committed: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
        return {}

    aside = functools.partial(_set_aside_into, [])
    with pytest.raises(ValueError, match="set_aside"):
        _runner(infra, "t", "g", handle, set_aside=aside, owner=_Owner())
    with pytest.raises(ValueError, match="set_aside"):
        _runner(infra, "t", "g", handle, set_aside=aside, rewind=rewind)
