"""A batch Kafka's producer takes only in part (it refuses a record after taking the ones before it) is in
doubt even once the part taken is acknowledged: the callers (the ingest API's claims, the outbox relay)
then read back what landed instead of taking every record for sent. A producer stopping while Kafka does
not answer stops within its timeout, its records in doubt."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.kit.errors import InDoubt, Unavailable
from streams.producer import DeliveryInDoubt, Producer, Record
from tests import factories as f
from tests.kafka_tools import broker_frozen, eventually, new_topic, read_topic

pytestmark = pytest.mark.integration


async def test_a_batch_taken_in_part_is_in_doubt_after_the_part_taken_lands(infra):
    topic = await new_topic(infra, f"{infra.prefix}partial-{f.unique('t')}")
    producer = Producer(infra.kafka, client_id="partial-test")
    await producer.start()
    try:
        batch = [
            Record(topic=topic, value=b"taken"),
            Record(topic=topic, value=b"x" * (2 * 1024 * 1024)),  # over the request size: refused
            Record(topic=topic, value=b"never handed over"),
        ]
        with pytest.raises(DeliveryInDoubt) as raised:
            await producer.enqueue(batch)
        with pytest.raises(InDoubt, match="took 1 of 3"):
            await raised.value.delivery
    finally:
        await producer.stop()
    assert [r.value for r in await read_topic(infra.kafka, topic)] == [b"taken"]


@pytest.mark.alone  # it freezes the Kafka both workers share
async def test_a_producer_stops_within_its_timeout_while_kafka_does_not_answer(infra):
    topic = await new_topic(infra, f"{infra.prefix}stop-{f.unique('t')}")
    producer = Producer(infra.kafka, client_id="stop-test", timeout_s=0.5)
    # Started and its topic's leader known, however long a busy machine makes that take: 0.5 s is the
    # stop's bound under test, not the start's.
    await producer.start(within_s=60)
    await eventually(lambda: _sent(producer, topic), timeout_s=60)
    with broker_frozen():
        delivery = await producer.enqueue([Record(topic=topic, value=b"held")])
        began = time.monotonic()
        # Three timeouts at most (aiokafka's stop alone retries it for good); the broker stays frozen
        # past that, under its session timeout.
        await asyncio.wait_for(producer.stop(), 2.5)
        assert time.monotonic() - began < 2.5
    with pytest.raises(InDoubt):  # it may land or not: the caller reads back
        await delivery


async def _sent(producer: Producer, topic: str) -> bool:
    try:
        await producer.send_all([Record(topic=topic, value=b"first")])
    except Unavailable:  # not handed over, or in doubt: a copy landing later changes nothing here
        return False
    return True


async def test_a_stop_whose_library_steps_end_in_a_cancellation_of_their_own_still_stops(infra):
    # aiokafka's stop and its connections' close may end in a CancelledError raised inside them (a
    # connection's task cancelled under a close cut short): a failed step of the stop, not the caller's
    # cancellation, which alone would be passed on.
    producer = Producer(infra.kafka, client_id="cancelled-steps-test")
    await producer.start()
    client = producer._client
    assert client is not None
    close = client.client.close
    closed = []

    async def stop_cancelled_inside() -> None:
        raise asyncio.CancelledError

    async def close_then_cancelled() -> None:
        await close()
        closed.append(True)
        raise asyncio.CancelledError

    client.stop = stop_cancelled_inside
    client.client.close = close_then_cancelled
    await producer.stop()  # returns: nothing of it is this task's cancellation
    assert closed == [True]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
