"""The fault suite's view of a Kafka node it faulted: the cluster's metadata keeps a node killed as leader
and in sync until the controller fences it, so the suite counts a node only while it accepts connections.
Taken at its word, a node killed was healed before its process had started again, and the next node fault
left two of three down."""

from __future__ import annotations

import asyncio
from pathlib import Path

from deploy.chaos.faults import _answers, _in_full_sync, _writable_on
from deploy.local.kafka import Node

# Node 3 was killed a moment ago: the metadata still has it leading and in sync.
STALE = {"leader": 3, "isr": [3, 1, 2], "replicas": [3, 1, 2]}


def test_a_partition_led_by_a_node_that_does_not_answer_is_not_writable():
    assert not _writable_on(STALE, live={1, 2})
    assert _writable_on(STALE, live={1, 2, 3})
    # Led by a live node, but only one live replica in sync: acks=all with min.insync.replicas=2 waits.
    assert not _writable_on({"leader": 1, "isr": [1, 3], "replicas": [3, 1, 2]}, live={1, 2})
    assert _writable_on({"leader": 1, "isr": [1, 2], "replicas": [3, 1, 2]}, live={1, 2})


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
