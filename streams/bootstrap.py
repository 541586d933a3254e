"""Starting an aiokafka client through any one node of its bootstrap list that answers.

A node cut off the network hangs the connect instead of refusing it, and a frozen one accepts it and
never answers; aiokafka tries the bootstrap servers in a random order within the one deadline its caller
gives the start. So each attempt is given one server and the deadline of its own: such a node costs one
timeout, not the start (and not a service's start-up, which a crash would restart from scratch). Once
started, a client knows every node from the cluster's metadata."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar


class _Startable(Protocol):
    async def start(self) -> Any: ...


C = TypeVar("C", bound=_Startable)


async def start_through_any_node(
    make: Callable[[dict[str, Any]], C],
    options: dict[str, Any],
    timeout_s: float,
    *,
    close: Callable[[C], Awaitable[Any]],
) -> C:
    """`make(options)` with one bootstrap server at a time, started within `timeout_s` each; the first
    that starts is returned. The last node's failure is raised (TimeoutError if it did not answer); a
    failure that is not Kafka's or a timeout is raised at once."""
    servers = str(options["bootstrap_servers"]).split(",")
    for n, server in enumerate(servers, 1):
        client = make({**options, "bootstrap_servers": server})
        try:
            await asyncio.wait_for(client.start(), timeout_s)
        except Exception as exc:
            await close(client)
            if n == len(servers) or not (isinstance(exc, TimeoutError) or from_kafka(exc)):
                raise
            continue
        return client
    raise AssertionError("no bootstrap server")  # (the list is never empty: "".split(",") == [""])


def from_kafka(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("aiokafka")
