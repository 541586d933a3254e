"""A consumer whose handler never returns holds its partitions while their lag grows: past the bound the
runner is not live (its supervisor restarts the process, the group moves its partitions), logs where it is
stuck and counts it; a handler slow but within the bound is none of that."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.kit.http import consumer_liveness, create_app
from streams.consumer import Batch, ConsumerRunner, Handler
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import committed, eventually, new_topic
from tests.metrics import sample

pytestmark = pytest.mark.integration

BOUND_S = 2.0


async def _runner_with_one_record(infra: Infra, handle: Handler, *, bounded: bool = True) -> ConsumerRunner:
    topic = await new_topic(infra, f"{infra.prefix}stuck-{f.unique('t')}")
    producer = AIOKafkaProducer(**infra.kafka.options())
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"m0")
    finally:
        await producer.stop()
    kafka = dataclasses.replace(infra.kafka, handler_max_s=BOUND_S)
    return ConsumerRunner(kafka=kafka, group_id=f.unique("g"), topics=[topic], handle=handle, bounded=bounded)


@contextlib.asynccontextmanager
async def _service(runner: ConsumerRunner) -> AsyncIterator[httpx.AsyncClient]:
    """A service running the runner, with the kit's /health/live and /metrics."""

    async def health() -> dict[str, str]:
        return {}

    app = create_app(title="t", health=health, liveness=lambda: consumer_liveness({"c": runner}))
    task = asyncio.create_task(runner.run())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
            yield client
    finally:
        runner.stop()
        await asyncio.wait_for(task, 20)


async def test_a_handler_that_never_returns_makes_the_runner_not_live_within_the_bound(infra, caplog):
    caplog.set_level(logging.ERROR, logger="streams.consumer")
    entered, released = asyncio.Event(), asyncio.Event()
    called_at: list[float] = []

    async def hanging(batch: Batch) -> None:
        called_at.append(time.monotonic())
        entered.set()
        await released.wait()  # a database call on a half-open connection, say: set only to clean up

    runner = await _runner_with_one_record(infra, hanging)
    topic, stuck_total = runner.topics[0], {"group": runner.group_id}
    async with _service(runner) as client:
        try:
            await asyncio.wait_for(entered.wait(), 30)
            assert (await client.get("/health/live")).status_code == 200
            assert await sample(client, "stopline_consumer_stuck_total", **stuck_total) == 0

            live_asked_at: list[float] = []  # when each question answered "live" was sent

            async def not_live() -> httpx.Response | None:
                asked_at = time.monotonic()
                answer = await client.get("/health/live")
                if answer.status_code == 503:
                    return answer
                live_asked_at.append(asked_at)
                return None

            answer = await eventually(not_live, timeout_s=BOUND_S + 10, every_s=0.05)
            failed_after = time.monotonic() - called_at[0]
            checks = answer.json()["checks"]
            readiness = runner.readiness()
            await eventually(
                lambda: sample(client, "stopline_consumer_stuck_total", **stuck_total),
                timeout_s=1,
                every_s=0.05,
            )
            counted = await sample(client, "stopline_consumer_stuck_total", **stuck_total)
        finally:
            released.set()
        # It returns after all: live again, its batch committed.
        await eventually(lambda: committed(infra.kafka, runner.group_id, topic), timeout_s=20)
        live_again = (await client.get("/health/live")).status_code
    # Not live from the bound on, not before: told "not live" no sooner than the bound, and "live" only to
    # questions asked before it (an answer that came late, the test's own loop being slow, proves nothing).
    assert failed_after >= BOUND_S - 0.1
    assert live_asked_at and max(live_asked_at) - called_at[0] < BOUND_S
    assert checks == {"c handler": "error: a batch's handler has not returned for 2 s (stuck)"}
    assert "(stuck)" in readiness  # holding its partitions, and not to be given work either
    assert counted == 1 and live_again == 200 and called_at[1:] == []
    [logged] = [r.fields for r in caplog.records if r.getMessage() == "consumer handler stuck"]
    assert logged["group"] == runner.group_id and logged["at"] == [f"{topic}[0]@0"]
    assert any(frame.endswith(".<locals>.hanging") for frame in logged["awaits"]), logged["awaits"]


async def test_a_handler_slow_but_within_the_bound_stays_live_and_is_not_counted(infra, caplog):
    caplog.set_level(logging.ERROR, logger="streams.consumer")
    entered, returned = asyncio.Event(), asyncio.Event()

    async def slow(batch: Batch) -> None:
        entered.set()
        # The slowness under test, not a barrier: half the bound, so that a loaded machine's late event
        # loop (the suite runs beside others on two cores) does not carry a slow call past it (ci-EK).
        await asyncio.sleep(BOUND_S * 0.5)
        returned.set()

    runner = await _runner_with_one_record(infra, slow)
    topic = runner.topics[0]
    async with _service(runner) as client:
        await asyncio.wait_for(entered.wait(), 30)
        probed: list[int] = []
        while not returned.is_set():  # probed throughout the handler's call
            probed.append((await client.get("/health/live")).status_code)
            await asyncio.sleep(0.05)
        # The barrier: the batch handled and committed, so the handler's call is over.
        await eventually(lambda: committed(infra.kafka, runner.group_id, topic), timeout_s=20)
        probed.append((await client.get("/health/live")).status_code)
        assert len(probed) >= 10 and set(probed) == {200}
        assert await sample(client, "stopline_consumer_stuck_total", group=runner.group_id) == 0
    assert not [r for r in caplog.records if r.getMessage() == "consumer handler stuck"]


async def test_a_handler_waiting_on_kafka_on_purpose_is_never_told_stuck(infra):
    """Ingest's intake waits as long as Kafka takes to acknowledge its events (`bounded=False`): an outage
    past the bound would otherwise have the process restarted in a loop, each restart waiting the same."""
    waiting, stuck, released = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def on_kafka(batch: Batch) -> None:
        waiting.set()
        await released.wait()

    async def hanging(batch: Batch) -> None:
        stuck.set()
        await released.wait()

    unbounded = await _runner_with_one_record(infra, on_kafka, bounded=False)
    bounded = await _runner_with_one_record(infra, hanging)
    async with _service(unbounded) as waits, _service(bounded) as hangs:
        try:
            await asyncio.wait_for(waiting.wait(), 30)
            await asyncio.wait_for(stuck.wait(), 30)

            async def not_live() -> bool:
                return (await hangs.get("/health/live")).status_code == 503

            # The barrier: the handler called after it is past the bound, so it is past it too.
            await eventually(not_live, timeout_s=BOUND_S + 10, every_s=0.05)
            live = (await waits.get("/health/live")).status_code
            counted = await sample(waits, "stopline_consumer_stuck_total", group=unbounded.group_id)
        finally:
            released.set()
    assert (live, counted, unbounded.liveness()) == (200, 0, "ok")


async def test_the_group_drops_a_member_that_does_not_poll_only_after_its_handler_bound_and_a_restart(infra):
    """max.poll.interval.ms: past it aiokafka gives up the member's place in its group for good. It stays
    2 minutes (a restore or a snapshot may hold the loop), and a minute beyond a longer handler bound."""

    async def nothing(batch: Batch) -> None:
        pass

    def interval_ms(handler_max_s: float) -> int:
        kafka = dataclasses.replace(infra.kafka, handler_max_s=handler_max_s)
        runner = ConsumerRunner(kafka=kafka, group_id="g", topics=["t"], handle=nothing)
        return int(runner._options["max_poll_interval_ms"])

    assert interval_ms(60) == 120_000 and interval_ms(10) == 120_000 and interval_ms(100) == 160_000
