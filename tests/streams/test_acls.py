"""The broker's own refusals: an institution's principal reaches only its own topics, a service only what
it uses, a wrong password nothing, and a revoked institution nothing, not even on a connection it opened
before (streams.acls on the real, authorizing broker)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from services.coordination.delivery import signing
from streams import acls, admin, credentials, topics
from streams.admin import admin_client, delete_topics
from streams.connection import KafkaConnection
from streams.producer import Producer, Record, fence
from streams.settle import landed
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import eventually, on_kafka, read_topic

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


async def _reauth_s(kafka: KafkaConnection) -> float:
    """The brokers' `connections.max.reauth.ms`, in seconds: how long a login lasts on an open connection."""
    async with admin_client(kafka) as client:
        return await admin.reauth_ms(client) / 1000


WRITTEN, REFUSED, LOGGED_OUT = "written", "topic refused", "logged out"


async def _try_produce(producer: AIOKafkaProducer, topic: str) -> str:
    """What the broker makes of the producer's next record: written, or its topic refused (the
    connection still carries its login), or nothing: the broker closed the connection and will not let
    the producer log in again, so the produce finds no broker to send to."""
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b'{"probe": true}', key=b"k"), 5)
    except TopicAuthorizationFailedError:
        return REFUSED
    except (KafkaError, TimeoutError):
        return LOGGED_OUT
    return WRITTEN


async def _logged_out(producer: AIOKafkaProducer, topic: str, reauth_s: float, *, answers: list[str]) -> None:
    """The barrier: poll the producer's open connection until the broker closes it and refuses it a new
    login, bounded by a few re-authentication intervals (the login it has may be up to one interval old).
    On the way the broker may answer only `answers`, in that order (a grant just deleted may still let a
    record through while the broker applies the deletion, and never after it refused one)."""
    deadline = time.monotonic() + 4 * reauth_s + 10
    while (outcome := await _try_produce(producer, topic)) != LOGGED_OUT:
        assert outcome in answers, f"{outcome} after {answers[0]}"
        answers = answers[answers.index(outcome) :]
        assert time.monotonic() < deadline, f"still logged in {4 * reauth_s + 10:.0f}s on"
        await asyncio.sleep(0.2)


def _login_refused(caplog: pytest.LogCaptureFixture) -> bool:
    return any("SaslAuthenticationFailed" in r.getMessage() for r in caplog.records if r.name == "aiokafka")


async def _revoke_cli(institution: str) -> tuple[int, str, str]:
    """`python -m streams.acls revoke <id>` as an operator runs it (the session's topic prefix and broker
    from the environment): its exit code, its report (stdout) and its log (stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams.acls",
        "revoke",
        institution,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ.copy(),
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _audit(log: str, institution: str) -> dict[str, Any]:
    """The one log record of the revoke (the JSON lines name their fields)."""
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    (audit,) = [r for r in records if r.get("institution") == institution]
    return audit


async def test_a_revoked_institution_logs_in_no_more_and_its_topics_stay(infra: Infra):
    bank = f.unique("bank")
    me = await on_kafka(infra, bank, "bank")
    name = lambda t: topics.name(t, infra.prefix)  # noqa: E731
    await _produce(me, name(topics.intake_for(bank)))
    # A grant made by hand, outside `institution_grants`: revoking goes by the principal, so it goes too.
    by_hand = credentials.AclBinding(
        bank, credentials.TOPIC, name(topics.ALERTS), credentials.LITERAL, "describe"
    )
    async with admin_client(infra.kafka) as client:
        await credentials.create_acls(client, [by_hand])
        await eventually(lambda: credentials.acls_of(client, bank), timeout_s=10)

    code, report, log = await _revoke_cli(bank)

    assert code == 0, log
    assert "SCRAM credentials deleted: SCRAM-SHA-512" in report
    assert f"grants deleted: {len(acls.institution_grants(bank, 'bank', infra.prefix)) + 1}" in report
    assert str(by_hand) in report
    reauth_s = await _reauth_s(infra.kafka)
    assert (
        f"a connection still open is closed within {reauth_s:g} s"
        if reauth_s
        else "WARNING: the brokers never ask an open connection to log in again"
    ) in report
    audit = _audit(log, bank)
    assert audit["msg"] == "institution's Kafka access revoked"
    assert audit["credentials_deleted"] == ["SCRAM-SHA-512"]
    assert set(audit["grants_deleted"]) == {
        *map(str, acls.institution_grants(bank, "bank", infra.prefix)),
        str(by_hand),
    }
    assert audit["operator"] and audit["kafka_principal"] == acls.ADMIN

    # A new connection with its password is refused (once the broker has the deletion: milliseconds).
    async def refused() -> bool:
        try:
            await _produce(me, name(topics.intake_for(bank)))
        except KafkaConnectionError:
            return True
        return False

    await eventually(refused, timeout_s=10, every_s=0.2)
    # The broker describes no grant to its principal any more.
    async with admin_client(infra.kafka) as client:
        await eventually(lambda: _none_left(client, bank), timeout_s=10)
    # Its topics and what it wrote stay: evidence.
    async with admin_client(infra.kafka) as client:
        assert {name(t) for t in topics.institution_topics(bank)} <= set(await client.list_topics())
    assert len(await read_topic(infra.kafka, name(topics.intake_for(bank)))) == 1

    # Revoking again is no error, and says that nothing was left.
    code, report, log = await _revoke_cli(bank)
    assert code == 0, log
    assert f"{bank}: nothing left to revoke" in report
    audit = _audit(log, bank)
    assert audit["msg"] == "nothing left to revoke"
    assert audit["credentials_deleted"] == [] and audit["grants_deleted"] == []


async def _none_left(client: AIOKafkaAdminClient, principal: str) -> bool:
    return await credentials.acls_of(client, principal) == []


@dataclass
class Connected:
    """A bank's producer that logged in and wrote a record, on a node whose logins last seconds."""

    bank: str
    intake: str
    producer: AIOKafkaProducer
    reauth_s: float


@contextlib.asynccontextmanager
async def _connected(
    infra: Infra, kafka: KafkaConnection, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Connected]:
    """The local stack's logins never lapse, so these run on the session's own node (`short_login_kafka`)."""
    reauth_s = await _reauth_s(kafka)
    assert 0 < reauth_s <= 10
    bank = f.unique("bank")
    me = await on_kafka(infra, bank, "bank", kafka=kafka)
    intake = topics.name(topics.intake_for(bank), infra.prefix)
    producer = AIOKafkaProducer(**me.options(), request_timeout_ms=2000)
    await producer.start()
    try:
        await producer.send_and_wait(intake, b'{"before": true}', key=b"k")
        caplog.set_level(logging.ERROR, logger="aiokafka")
        yield Connected(bank, intake, producer, reauth_s)
    finally:
        await asyncio.wait_for(producer.stop(), 30)


async def test_a_producer_connected_before_the_revoke_is_refused_at_once_and_logged_out_at_its_next_login(
    infra: Infra, short_login_kafka: KafkaConnection, caplog: pytest.LogCaptureFixture
):
    kafka = short_login_kafka
    async with _connected(infra, kafka, caplog) as c:
        revoked = await acls.revoke_institution(kafka, c.bank)
        assert revoked.credentials == ["SCRAM-SHA-512"]
        assert set(revoked.grants) == set(acls.institution_grants(c.bank, "bank", infra.prefix))

        # Its grants go at once (once its topic is refused, nothing more is written: a record may pass
        # while the broker applies the deletion); its login lasts until the broker asks for a new one,
        # which it refuses.
        await _logged_out(c.producer, c.intake, c.reauth_s, answers=[WRITTEN, REFUSED])
        assert _login_refused(caplog)
        assert await _try_produce(c.producer, c.intake) == LOGGED_OUT  # and it stays out
    assert (await acls.revoke_institution(kafka, c.bank)).nothing


async def test_a_replaced_password_stops_a_connection_that_logged_in_with_the_old_one(
    infra: Infra, short_login_kafka: KafkaConnection, caplog: pytest.LogCaptureFixture
):
    """A leaked password replaced (`institution <id> --password-file new`): the grants stay, so only the
    broker's re-authentication stops a connection that logged in with the leaked one."""
    kafka = short_login_kafka
    async with _connected(infra, kafka, caplog) as c:
        await acls.provision_institution(kafka, c.bank, kind="bank", prefix=infra.prefix, password="new-one")

        await _logged_out(c.producer, c.intake, c.reauth_s, answers=[WRITTEN])  # its grants are still there
        assert _login_refused(caplog)
        await _produce(kafka.as_principal(c.bank, "new-one"), c.intake)  # the new password works


async def test_revoking_refuses_an_id_that_names_no_institution(infra: Infra):
    with pytest.raises(ValueError, match="ids starting with 'stopline' are reserved"):
        await acls.revoke_institution(infra.kafka, acls.COORDINATION)  # a service is not revoked so
    with pytest.raises(ValueError, match="lower-case letters"):
        await acls.revoke_institution(infra.kafka, "Bank_D")
    code, report, log = await _revoke_cli("Bank_D")
    assert code == 2 and report == ""
    assert "error: institution id 'Bank_D': 2 to 40 lower-case letters" in log
