"""Starting an aiokafka client through any one node of its bootstrap list that answers.

A node cut off the network hangs the connect instead of refusing it, and a frozen one accepts it and
never answers; aiokafka tries the bootstrap servers within the one deadline its caller gives the start,
so such a node, tried first, takes all of it (and a service's start-up: the crash restarts it from
scratch). So each attempt is given one server, in a random order as aiokafka's, and a deadline of its
own: such a node costs one attempt. Once started, a client knows every node from the cluster's
metadata."""

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


async def start_through_any_node(
    make: Callable[[dict[str, Any]], C],
    options: dict[str, Any],
    *,
    attempt_s: float,
    total_s: float | None = None,
) -> C:
    """`make(options)` with one bootstrap server at a time, each started within `attempt_s` (and all
    within `total_s`, if given); the first that starts is returned. The last attempt's failure is raised
    (TimeoutError if its node did not answer), and one that is neither Kafka's nor a timeout at once. A
    client that did not start is closed, also when the start is cancelled."""
    servers = str(options["bootstrap_servers"]).split(",")
    random.shuffle(servers)  # noqa: S311 - spreading the starts, not security
    deadline = None if total_s is None else time.monotonic() + total_s
    for n, server in enumerate(servers, 1):
        left = attempt_s if deadline is None else min(attempt_s, deadline - time.monotonic())
        if left <= 0:
            raise TimeoutError(f"no Kafka node answered within {total_s} s")
        client = make({**options, "bootstrap_servers": server})
        try:
            await asyncio.wait_for(client.start(), left)
        except BaseException as exc:
            await client.stop()
            if n == len(servers) or not (isinstance(exc, TimeoutError) or from_kafka(exc)):
                raise
            continue
        return client
    raise AssertionError("no bootstrap server")  # (never: "".split(",") == [""])


def from_kafka(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("aiokafka")
