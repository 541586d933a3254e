"""Creating topics on the real broker: Kafka's refusal of a topic comes back at once with its own error
and the topic's name; a topic another instance made meanwhile is no failure."""

from __future__ import annotations

import asyncio
import time

import pytest

from streams import admin, topics
from tests.conftest import Infra

pytestmark = pytest.mark.integration


async def test_a_topic_kafka_refuses_is_named_with_kafkas_error_at_once(infra: Infra):
    # Kafka answers a refusal per topic without failing the request: once, it surfaced only as the
    # leaders' wait timing out, without the reason.
    bad = topics.instructions_for("bank!not-a-topic-name")
    began = time.monotonic()
    with pytest.raises(admin.TopicRefused) as refused:
        await admin.ensure_topic(infra.kafka, bad, infra.prefix, timeout_s=10)
    assert time.monotonic() - began < 5
    assert list(refused.value.refused) == [topics.name(bad, infra.prefix)]
    assert refused.value.refused[topics.name(bad, infra.prefix)].startswith("InvalidTopicError")


async def test_topics_created_by_several_instances_at_once_are_created_once(infra: Infra):
    topic = topics.instructions_for("bank-raced")
    made = await asyncio.gather(*(admin.ensure_topic(infra.kafka, topic, infra.prefix) for _ in range(3)))
    # Each instance either made it or found it made; only one made it.
    assert sorted(made) == [False, False, True]
    async with admin.admin_client(infra.kafka) as client:
        assert topics.name(topic, infra.prefix) in await client.list_topics()
