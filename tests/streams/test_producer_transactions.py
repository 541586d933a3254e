"""A transaction of a producer fenced by a later one fails `Fenced` and commits nothing; a restart ends the
transaction it gave up on: its commit's wait fails rather than waits for good on the stopped client (a
task and a client left behind per publication in doubt), and what the topic holds afterwards is final."""

from __future__ import annotations

import asyncio

import pytest

from services.kit.errors import InDoubt
from streams.producer import Fenced, Producer, Record
from tests import factories as f
from tests.kafka_tools import new_topic, read_topic

pytestmark = pytest.mark.integration


async def test_a_commit_given_up_on_ends_when_its_producer_is_restarted(infra):
    topic = await new_topic(infra, f"{infra.prefix}txn-{f.unique('t')}")
    transactional_id = f"{infra.prefix}{f.unique('txn')}"
    producer = Producer(infra.kafka, client_id="txn-test", transactional_id=transactional_id)
    await producer.start()
    try:
        given_up = await producer.transact([Record(topic, b"given up")])
        await producer.restart()  # before the commit: the caller gave up on it
        outcome = (await asyncio.wait_for(asyncio.gather(given_up, return_exceptions=True), 15))[0]
        assert isinstance(outcome, InDoubt), outcome
        await asyncio.wait_for(await producer.transact([Record(topic, b"next")]), 20)
    finally:
        await producer.stop()
    assert [r.value for r in await read_topic(infra.kafka, topic)] == [b"next"]


async def test_a_transaction_of_a_fenced_producer_fails_fenced_and_commits_nothing(infra):
    topic = await new_topic(infra, f"{infra.prefix}txn-{f.unique('t')}")
    transactional_id = f"{infra.prefix}{f.unique('txn')}"
    first = Producer(infra.kafka, client_id="txn-test", transactional_id=transactional_id)
    later = Producer(infra.kafka, client_id="txn-test", transactional_id=transactional_id)
    await first.start()
    try:
        await later.start()  # fences the first
        try:
            with pytest.raises(Fenced):
                await asyncio.wait_for(await first.transact([Record(topic, b"fenced")]), 15)
            assert first.unsettled  # restarted before its next transaction
            await asyncio.wait_for(await later.transact([Record(topic, b"later")]), 20)
        finally:
            await later.stop()
    finally:
        await first.stop()
    assert [r.value for r in await read_topic(infra.kafka, topic)] == [b"later"]
