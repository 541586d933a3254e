"""Starting an aiokafka client through any one node of its bootstrap list that answers.

A node cut off the network hangs the connect instead of refusing it, and a frozen one accepts it and
never answers; aiokafka tries the bootstrap servers within the one deadline its caller gives the start,
so such a node, tried first, takes all of it (and a service's start-up: the crash restarts it from
scratch). So each attempt is given one server, in a random order as aiokafka's, and a deadline of its
own: such a node costs one attempt. Once started, a client knows every node from the cluster's
metadata.

Given a total time, the list is gone round again until it is spent: while a node is down, every node
may refuse a start for seconds (a transactional producer's start waits for its transaction coordinator,
which was on the node that went down), and a service whose start-up fails is started again from scratch
(under Kubernetes, with a back-off that grows to minutes)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar


class _Client(Protocol):  # an aiokafka producer or consumer
    async def start(self) -> Any: ...

    async def stop(self) -> Any: ...


C = TypeVar("C", bound=_Client)


PASS_PAUSE_S = 1.0  # between two rounds of the list: a node that refused at once is not asked again at once


async def start_through_any_node(
    make: Callable[[dict[str, Any]], C],
    options: dict[str, Any],
    *,
    attempt_s: float,
    total_s: float | None = None,
) -> C:
    """`make(options)` with one bootstrap server at a time, each started within `attempt_s`; the first that
    starts is returned. Without `total_s`, the list is tried once; with it, round and round (a second's
    pause between rounds) for `total_s` in all. The last attempt's failure is raised (TimeoutError if its
    node did not answer, or if the time ran out), and one that is neither Kafka's nor a timeout at once. A
    client that did not start is closed, also when the start is cancelled."""
    servers = str(options["bootstrap_servers"]).split(",")
    deadline = None if total_s is None else time.monotonic() + total_s
    while True:
        random.shuffle(servers)  # noqa: S311 - spreading the starts, not security
        for n, server in enumerate(servers, 1):
            left = attempt_s if deadline is None else min(attempt_s, deadline - time.monotonic())
            if left <= 0:
                raise TimeoutError(f"no Kafka node answered within {total_s} s")
            client = make({**options, "bootstrap_servers": server})
            try:
                await asyncio.wait_for(client.start(), left)
            except BaseException as exc:
                await client.stop()
                if not (isinstance(exc, TimeoutError) or from_kafka(exc)):
                    raise
                last_round = deadline is None or deadline - time.monotonic() <= PASS_PAUSE_S
                if n == len(servers) and last_round:
                    raise
                continue
            return client
        await asyncio.sleep(PASS_PAUSE_S)


def from_kafka(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("aiokafka")
