"""Creating topics on the real broker: with the replication the cluster is configured for; Kafka's refusal
of a topic comes back at once with its own error and the topic's name; a topic another instance made
meanwhile is no failure."""

from __future__ import annotations

import asyncio

import pytest

from deploy.local import kafka as local_kafka
from streams import acls, admin, topics
from tests.conftest import Infra

pytestmark = pytest.mark.integration


async def test_a_topic_kafka_refuses_is_named_with_kafkas_error_at_once(infra: Infra):
    # Kafka answers a refusal per topic without failing the request: once, it surfaced only as the
    # leaders' wait timing out, without the reason.
    bad = topics.instructions_for("bank!not-a-topic-name")
    with pytest.raises(admin.TopicRefused) as refused:  # (not the leaders' wait timing out)
        await admin.ensure_topic(infra.kafka, bad, infra.prefix, timeout_s=10)
    assert list(refused.value.refused) == [topics.name(bad, infra.prefix)]
    assert refused.value.lasting == {topics.name(bad, infra.prefix)}  # a name Kafka will refuse again
    assert refused.value.refused[topics.name(bad, infra.prefix)].startswith("InvalidTopicError")


async def test_topics_created_by_several_instances_at_once_are_created_once(infra: Infra):
    topic = topics.instructions_for("bank-raced")
    made = await asyncio.gather(*(admin.ensure_topic(infra.kafka, topic, infra.prefix) for _ in range(3)))
    # Each instance either made it or found it made; only one made it.
    assert sorted(made) == [False, False, True]
    async with admin.admin_client(infra.kafka) as client:
        assert topics.name(topic, infra.prefix) in await client.list_topics()


async def test_the_relay_makes_a_topic_with_the_replication_the_cluster_is_configured_for(infra: Infra):
    # Not the count of brokers up at the time: a topic made while a node was down kept two replicas for
    # good, and stopped taking writes whenever either of them was down. (On the one-node test stack both
    # are one; the decision is `admin.replication`, the configured value, also as coordination's principal.)
    configured = local_kafka.brokers()  # deploy.local.kafka sets default.replication.factor to it
    topic = topics.instructions_for("bank-replicated")
    coordination = infra.kafka.as_principal(acls.COORDINATION)
    assert await admin.ensure_topic(coordination, topic, infra.prefix)
    async with admin.admin_client(infra.kafka) as client:
        assert await admin.replication(client, 10) == configured
        (described,) = await client.describe_topics([topics.name(topic, infra.prefix)])
    assert {len(p["replicas"]) for p in described["partitions"]} == {configured}
