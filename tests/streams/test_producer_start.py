"""A producer (and the other clients that start through `streams.bootstrap`: the scorer's snapshot
store, the read-back of records in doubt) starts through any node of its bootstrap list that answers,
and is ready while any node answers: one whose connect hangs (a node cut off the network drops the
handshake) can neither keep a service from starting nor make it unready."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import random
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from aiokafka.client import ConnectionGroup
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import BrokerMetadata

from services.scorer.snapshots import Snapshot, SnapshotStore
from streams.admin import admin_client, reauth_ms
from streams.connection import KafkaConnection
from streams.producer import PING_S, Producer, Record
from streams.settle import landed
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import new_topic
from tests.scorer.helpers import fresh_prefix

# Alone (make test): each start here is bounded at 2 s, which a second worker's load can outlast.
pytestmark = [pytest.mark.integration, pytest.mark.alone]


@contextmanager
def _unreachable() -> Iterator[str]:
    """An address whose connects hang: a listener whose accept queue is full drops every further SYN."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        host, port = listener.getsockname()
        queued = [socket.socket() for _ in range(3)]
        try:
            for s in queued:
                s.setblocking(False)
                s.connect_ex((host, port))
            yield f"{host}:{port}"
        finally:
            for s in queued:
                s.close()


@pytest.fixture
def in_list_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bootstrap list tried in its order (aiokafka and `streams.bootstrap` shuffle it): the node that
    hangs is tried first, every time."""
    monkeypatch.setattr(random, "shuffle", lambda items: None)


async def test_a_unreachable_node_first_in_the_bootstrap_list_does_not_keep_the_producer_from_starting(
    infra: Infra, in_list_order: None
) -> None:
    with _unreachable() as node:
        kafka = dataclasses.replace(infra.kafka, bootstrap=f"{node},{infra.kafka.bootstrap}")
        producer = Producer(kafka, client_id="test-silent-bootstrap", timeout_s=2)
        await producer.start()
        try:
            assert await producer.ping() == "ok"
        finally:
            await producer.stop()


async def test_a_unreachable_first_node_does_not_keep_the_scorers_snapshot_store_from_starting(
    infra: Infra, in_list_order: None
) -> None:
    """(The scorer crashed at its start in a fault run, with a Kafka node cut off, and started again.)"""
    prefix = await fresh_prefix(infra)
    with _unreachable() as node:
        kafka = dataclasses.replace(infra.kafka, bootstrap=f"{node},{infra.kafka.bootstrap}")
        store = SnapshotStore(kafka, prefix=prefix, timeout_s=2)
        await store.start()
        try:
            saved = Snapshot("persons", 3, {"events.bank": 42}, "layout-1", {"n": 1}, 0.0)
            await store.save("persons", 3, saved.to_bytes())
            loaded = (await store.load("persons", [3]))[3]
            assert loaded is not None and loaded.offsets == {"events.bank": 42}
        finally:
            await store.stop()


async def test_a_unreachable_first_node_does_not_keep_records_in_doubt_from_being_read_back(
    infra: Infra, in_list_order: None
) -> None:
    topic = await new_topic(infra, f"{infra.prefix}readback-{f.unique('t')}", 2)
    since = datetime.now(UTC)
    producer = Producer(infra.kafka, client_id="test-readback")
    await producer.start()
    try:
        await producer.send_all([Record(topic, b"the-record", b"k")])
    finally:
        await producer.stop()
    with _unreachable() as node:
        kafka = dataclasses.replace(infra.kafka, bootstrap=f"{node},{infra.kafka.bootstrap}")
        found = await landed(
            kafka, topic, since=since, identify=lambda r: r.value.decode(), wanted=["the-record"], timeout_s=8
        )
    assert found == {"the-record"}


async def test_a_producer_with_no_node_reachable_fails_to_start_within_its_bounds(infra: Infra) -> None:
    with _unreachable() as node:
        kafka = dataclasses.replace(infra.kafka, bootstrap=node)
        producer = Producer(kafka, client_id="test-silent-bootstrap", timeout_s=1)
        with pytest.raises(TimeoutError):
            await producer.start()
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            await producer.start(within_s=2.5)  # round the list again and again, for 2.5 s
        assert 2.5 <= time.monotonic() - began < 4


@contextlib.asynccontextmanager
async def _back_after(target: str, seconds: float) -> AsyncIterator[str]:
    """An address where connects are refused for `seconds`, then forwarded to `target`: a node down, then
    back (a client learns of the real node from the metadata it is given through it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    host, target_port = target.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(target_port))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def listen_later() -> asyncio.Server:
        await asyncio.sleep(seconds)
        return await asyncio.start_server(forward, "127.0.0.1", port)

    opening = asyncio.create_task(listen_later())
    try:
        yield f"127.0.0.1:{port}"
    finally:
        opening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            (await opening).close()


async def test_a_start_up_goes_round_the_list_again_until_a_node_answers(infra: Infra) -> None:
    """Every node refuses the start for a few seconds (a node just went down, with the transaction
    coordinator of a producer): a service's start-up tries again, within its bound, rather than failing
    and being started again from scratch (which a fault run saw four times in 1,000 faults)."""
    async with _back_after(infra.kafka.bootstrap.split(",")[0], 2.0) as node:
        kafka = dataclasses.replace(infra.kafka, bootstrap=node)
        with pytest.raises(KafkaConnectionError):  # the list tried once: refused
            await Producer(kafka, client_id="test-node-back", timeout_s=1).start()
        producer = Producer(kafka, client_id="test-node-back", timeout_s=1)
        await producer.start(within_s=20)
        try:
            assert await producer.ping() == "ok"
        finally:
            await producer.stop()


async def test_a_known_node_that_does_not_answer_leaves_the_producer_ready(infra: Infra) -> None:
    """A node frozen or cut off the network is still in the cluster's metadata while its partitions lead
    elsewhere; readiness must not wait on it (asked first, it took the whole probe)."""
    producer = Producer(infra.kafka, client_id="test-silent-node", timeout_s=2)
    await producer.start()
    try:
        with _unreachable() as node:
            host, port = node.rsplit(":", 1)
            # The test's stand-in for a node that hangs: the client learns of nodes only from metadata.
            cluster = producer._producer.client.cluster
            cluster._brokers[99] = BrokerMetadata(99, host, int(port), None)
            assert 99 in {b.nodeId for b in cluster.brokers()}  # premise: asked like any other node
            for _ in range(6):
                began = time.monotonic()
                assert await producer.ping() == "ok"
                assert time.monotonic() - began < PING_S
    finally:
        await producer.stop()


async def test_a_producer_idle_past_its_login_stays_ready(short_login_kafka: KafkaConnection) -> None:
    """The broker closes a connection at its first request after `connections.max.reauth.ms` (aiokafka does
    not log in again in place). An idle producer's two connections, opened together, are then both closed
    by one readiness probe, which asks again on new ones rather than finding the instance unready (once
    every interval). On a node of the session's own whose logins last seconds."""
    async with admin_client(short_login_kafka) as admin:
        reauth_s = await reauth_ms(admin) / 1000
    assert 0 < reauth_s <= 10
    producer = Producer(short_login_kafka, client_id="test-idle-login", timeout_s=2)
    await producer.start()
    try:
        client = producer._producer.client
        for node, group in itertools.product(client.cluster.brokers(), ConnectionGroup):
            await client.send(node.nodeId, MetadataRequest([]), group=group)  # both of the probe's, open
        await asyncio.sleep(reauth_s + 1)  # the point: nothing is sent while both logins lapse
        assert await producer.ping() == "ok"
    finally:
        await producer.stop()
