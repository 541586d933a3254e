"""The broker's own refusals: an institution's principal reaches only its own topics, a service only what
it uses, and a wrong password nothing (streams.acls on the real, authorizing broker)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from services.coordination.delivery import signing
from streams import acls, admin, topics
from streams.admin import delete_topics
from streams.connection import KafkaConnection
from streams.producer import Producer, Record, fence
from streams.settle import landed
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import on_kafka, read_topic

pytestmark = pytest.mark.integration


async def _produce(kafka: KafkaConnection, topic: str) -> None:
    producer = AIOKafkaProducer(**kafka.options(), request_timeout_ms=5000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b'{"probe": true}', key=b"k")
    finally:
        await producer.stop()


async def _read(kafka: KafkaConnection, topic: str, group: str) -> None:
    """Join `group` and fetch from the topic's first partition (committing, as a group member does)."""
    consumer = AIOKafkaConsumer(**kafka.options(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.getmany(tp, timeout_ms=1000)
        await consumer.commit({tp: 0})
    finally:
        await consumer.stop()


async def test_an_institution_reaches_only_its_own_topics(infra: Infra, sessions):
    mine, _ = await f.institution(sessions, "bank")
    other, _ = await f.institution(sessions, "bank")
    me = await on_kafka(infra, mine, "bank")
    await on_kafka(infra, other, "bank")
    name = lambda t: topics.name(t, infra.prefix)  # noqa: E731

    # Its own: answers and events written, instructions read in a group of its own.
    await _produce(me, name(topics.responses_from(mine)))
    await _produce(me, name(topics.intake_for(mine)))
    await _read(me, name(topics.instructions_for(mine)), f"{infra.prefix}{mine}.instructions")

    # Another institution's answers and intake, the shared event topic, another's instructions: refused.
    for topic in (
        topics.responses_from(other),
        topics.intake_for(other),
        topics.EVENTS_BANK,
        topics.ALERTS,
    ):
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(me, name(topic))
    with pytest.raises(TopicAuthorizationFailedError):
        await _read(me, name(topics.instructions_for(other)), f"{infra.prefix}{mine}.instructions")
    with pytest.raises(GroupAuthorizationFailedError):  # another's group name
        await _read(me, name(topics.instructions_for(mine)), f"{infra.prefix}{other}.instructions")

    # What it wrote on its own topics is there (the refused writes left nothing anywhere).
    assert len(await read_topic(infra.kafka, name(topics.responses_from(mine)))) == 1
    assert await read_topic(infra.kafka, name(topics.responses_from(other))) == []


async def test_a_service_has_only_what_it_uses(infra: Infra):
    notifier = infra.kafka.as_principal(acls.NOTIFIER)
    scorer = infra.kafka.as_principal(acls.SCORER)
    name = lambda t: topics.name(t, infra.prefix)  # noqa: E731
    await _read(notifier, name(topics.ALERTS), f"{infra.prefix}notifier-probe")
    with pytest.raises(TopicAuthorizationFailedError):  # the notifier writes no instruction
        await _produce(notifier, name(topics.instructions_for("bank-a")))
    with pytest.raises(TopicAuthorizationFailedError):  # the scorer writes alerts, not the blocklist
        await _produce(scorer, name(topics.BLOCKLIST))
    with pytest.raises(TransactionalIdAuthorizationFailed):  # nor may it fence the outbox relay
        relay_id = f"{acls.relay_transactions(infra.prefix)}coordination-{uuid.uuid4().hex}"
        await fence(scorer, relay_id, client_id="test-fence", timeout_s=10)


def _idempotency_key(record: ConsumerRecord) -> str | None:
    value = dict(record.headers or ()).get(signing.IDEMPOTENCY_KEY)
    return value.decode() if value is not None else None


async def test_coordination_reads_back_every_topic_its_outbox_publishes_to(infra: Infra):
    """The relay publishes in transactions under its own transactional ids, fences another relay's, and
    looks for a publish in doubt on its topic before it is sent again: without the grant to read one of
    them, every batch holding a row of that topic failed for good (found by the fault suite)."""
    coordination = infra.kafka.as_principal(acls.COORDINATION)
    await admin.ensure_topic(infra.kafka, topics.instructions_for("bank-readback"), infra.prefix)
    since = datetime.now(UTC)
    relay_id = f"{acls.relay_transactions(infra.prefix)}test-{uuid.uuid4().hex}"
    for family in (topics.ESCALATIONS, topics.FRAUD_RECEIVERS, topics.instructions_for("bank-readback")):
        topic = topics.name(family, infra.prefix)
        message_id = str(uuid.uuid4())
        producer = Producer(coordination, client_id="test-readback", transactional_id=relay_id)
        await producer.start()
        try:
            record = Record(topic, b"{}", b"k", headers=[(signing.IDEMPOTENCY_KEY, message_id.encode())])
            await asyncio.wait_for(await producer.transact([record]), 20)
        finally:
            await producer.stop()
        await fence(coordination, relay_id, client_id="test-fence", timeout_s=10)
        found = await landed(
            coordination, topic, since=since, identify=_idempotency_key, wanted=[message_id], keys=[b"k"]
        )
        assert found == {message_id}, topic


async def test_a_wrong_password_reaches_nothing(infra: Infra):
    impostor = infra.kafka.as_principal(acls.COORDINATION, password="not-the-password")
    with pytest.raises(KafkaConnectionError):
        await _produce(impostor, topics.name(topics.ALERTS, infra.prefix))


def test_a_deployment_reads_each_service_password_from_its_file(tmp_path):
    for principal in acls.PRODUCTION_SERVICES:
        (tmp_path / principal).write_text(f"password-of-{principal}\n")
    assert acls.read_passwords(tmp_path) == {p: f"password-of-{p}" for p in acls.PRODUCTION_SERVICES}
    assert acls.BANKSIM not in acls.PRODUCTION_SERVICES  # the simulated banks are no deployment's
    (tmp_path / acls.NOTIFIER).write_text("\n")
    with pytest.raises(SystemExit, match="stopline-notifier: the password file .* is empty"):
        acls.read_passwords(tmp_path)
    (tmp_path / acls.NOTIFIER).unlink()
    with pytest.raises(SystemExit, match="stopline-notifier: no password file"):
        acls.read_passwords(tmp_path)


async def test_a_deployment_provisions_principals_topics_and_grants(infra: Infra):
    # A principal of its own (the services' are in use by this session): its password is the one given.
    prefix = f"{infra.prefix}deploy-"
    probe = "stopline-probe"
    try:
        created = await acls.provision_services(
            infra.kafka, prefix=prefix, passwords={probe: "given-password"}
        )
        assert topics.name(topics.ALERTS, prefix) in created
        # The password given works (the broker then refuses only for want of a grant), another does not.
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(
                infra.kafka.as_principal(probe, "given-password"), topics.name(topics.ALERTS, prefix)
            )
        with pytest.raises(KafkaConnectionError):
            await _produce(infra.kafka.as_principal(probe, "another"), topics.name(topics.ALERTS, prefix))
        # The services' grants on the new prefix's topics.
        await _read(
            infra.kafka.as_principal(acls.NOTIFIER), topics.name(topics.ALERTS, prefix), f"{prefix}notifier-x"
        )
        # Run again (every install and upgrade does): nothing to create, nothing refused.
        assert (
            await acls.provision_services(infra.kafka, prefix=prefix, passwords={probe: "given-password"})
            == []
        )
    finally:
        await delete_topics(infra.kafka, prefix)
