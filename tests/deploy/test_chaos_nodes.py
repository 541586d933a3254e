"""The fault suite's view of a Kafka node it faulted: the cluster's metadata keeps a node killed as leader
and in sync until the controller fences it, so the suite counts a node only while it accepts connections,
and a node's fault lasts until it is back in full sync (the next node fault waits for that)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from deploy.chaos import faults
from deploy.chaos.faults import Fault, Injector, _answers, _in_full_sync, _writable_on
from deploy.local import kafka
from deploy.local.kafka import Node

# Node 3 was killed a moment ago: the metadata still has it leading and in sync.
STALE = {"leader": 3, "isr": [3, 1, 2], "replicas": [3, 1, 2]}


def test_a_partition_led_by_a_node_that_does_not_answer_is_not_writable():
    assert not _writable_on(STALE, live={1, 2})
    assert _writable_on(STALE, live={1, 2, 3})
    # Led by a live node, but only one live replica in sync: acks=all with min.insync.replicas=2 waits.
    assert not _writable_on({"leader": 1, "isr": [1, 3], "replicas": [3, 1, 2]}, live={1, 2})
    # Two live replicas in sync, and the dead one still listed: the leader waits for it until it is fenced.
    assert not _writable_on({"leader": 1, "isr": [1, 2, 3], "replicas": [3, 1, 2]}, live={1, 2})
    assert _writable_on({"leader": 1, "isr": [1, 2], "replicas": [3, 1, 2]}, live={1, 2})  # fenced


def test_full_sync_needs_every_replica_answering_and_in_sync():
    assert not _in_full_sync(STALE, live={1, 2})
    assert _in_full_sync(STALE, live={1, 2, 3})
    assert not _in_full_sync({"leader": 1, "isr": [1, 2], "replicas": [3, 1, 2]}, live={1, 2, 3})


async def test_a_node_answers_only_while_its_process_accepts_connections(tmp_path: Path):
    server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    node = Node(id=1, port=port, controller_port=port + 1, dir=tmp_path)
    try:
        assert await _answers(node)
    finally:
        server.close()
        await server.wait_closed()
    assert not await _answers(node)  # killed: nothing listens there any more


class _Cluster:
    """Three nodes as the suite sees them: which answer, and the metadata a describe returns."""

    def __init__(self, tmp_path: Path) -> None:
        self.nodes = [Node(id=i, port=1, controller_port=2, dir=tmp_path / str(i)) for i in (1, 2, 3)]
        self.live = {1, 2}
        self.partition = dict(STALE)
        self.described = 0
        self.changed = asyncio.Event()

    async def answers(self, node: Node) -> bool:
        return node.id in self.live

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        self.described += 1
        self.changed.set()
        return [{"error_code": 0, "partitions": [dict(self.partition)]}]

    async def described_again(self, times: int) -> None:
        until = self.described + times
        while self.described < until:
            self.changed.clear()
            await self.changed.wait()


async def test_a_node_fault_heals_on_live_nodes_and_lasts_until_the_node_is_back_in_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cluster = _Cluster(tmp_path)
    monkeypatch.setattr(faults, "_answers", cluster.answers)
    monkeypatch.setattr(kafka, "nodes", lambda: cluster.nodes)
    injector = Injector.__new__(Injector)
    injector._admin = cluster
    injector._topics = ["chaos-events"]
    fault = Fault("broker_kill", "kafka-3", at=0.0)
    healing = asyncio.create_task(injector._writable(time.monotonic(), fault))

    await cluster.described_again(4)  # node 3 dead, still leader and in sync in the metadata
    assert not healing.done()
    cluster.partition = {"leader": 1, "isr": [1, 2], "replicas": [3, 1, 2]}  # fenced, leader moved
    await cluster.described_again(4)
    assert not healing.done() and fault.instance_ready_s is None  # writable, the node not back

    cluster.live = {1, 2, 3}
    cluster.partition = {"leader": 1, "isr": [1, 2, 3], "replicas": [3, 1, 2]}  # caught up
    writable = await asyncio.wait_for(healing, 10)
    assert writable is not None and fault.instance_ready_s is not None
    assert writable <= fault.instance_ready_s
