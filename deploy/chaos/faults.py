"""Faults injected at random while the traffic runs, and how long each took to heal.

Kinds: a service instance SIGKILLed (the supervisor starts it again) or frozen (SIGSTOP, then SIGCONT);
a Kafka node SIGKILLed (started again after a while), frozen, or cut off the network (its veth down);
PostgreSQL stopped at once (SIGQUIT, `immediate`) and started again; the webhook bank down or slower
than the relay waits. At most one instance of a service, one Kafka node and the database are faulted
at a time (the cluster keeps two of three replicas in sync; the other instance works on): a node fault
lasts until the node is back and every partition in full sync again, and the next one waits for that.

Kafka's metadata is not taken at its word about a node faulted: a node killed stays a leader and in sync
in it until the controller fences it (broker.session.timeout.ms), and a leader waits for every replica in
sync to take a write with acks=all; so a node counts only while it accepts connections, and a partition is
writable only when every replica in sync does. The node's lane is freed on two full-sync answers in a row:
one node's metadata may lag the controller's.

Recovery: from the fault's start until the instance's work is done again (a service: the instance is ready
again, or the other one is and holds every partition of the service's groups without it; how long the
instance itself took to be ready again is kept too), until every partition has a leader and two replicas
in sync, all of them answering (a Kafka node: writes with acks=all go through; how long until the node was
back with every partition in full sync is kept too), until every service instance is ready again, but
for one under a fault of its own (the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from deploy.chaos import fleet_checks
from deploy.chaos.stack import Stack, at_normal_priority, readiness, ready, signal_child
from deploy.chaos.traffic import Traffic
from deploy.local import kafka, postgres
from deploy.local.common import say
from deploy.local.processes import Child
from streams.admin import admin_client

log = logging.getLogger(__name__)

WEIGHTS = {
    "service_kill": 3.0,
    "service_freeze": 4.0,
    "broker_kill": 1.0,
    "broker_freeze": 1.0,
    "broker_partition": 1.0,
    "database_stop": 0.5,
    "webhook_down": 0.7,
    "webhook_slow": 0.7,
}
USES_POSTGRES = frozenset({"ingest", "coordination", "notifier", "blocklist"})
HEALED_WITHIN_S = 120.0  # a fault not healed by then is reported as such (recovery = None)


@dataclass
class Fault:
    kind: str
    target: str
    at: float  # seconds since the run started
    recovery_s: float | None = None
    # A service instance's: until it is ready itself. A Kafka node's: until it answers and every partition
    # is in full sync (the next node fault waits for it).
    instance_ready_s: float | None = None
    # A service instance's: what the other instance lacked when last asked before the work resumed
    # (its failing readiness checks, or "partitions not moved"); None if it had taken over at once. A
    # PostgreSQL stop's: the instances not ready when last asked.
    waited_on: str | None = None
    # A PostgreSQL stop's or a Kafka node's: until the server ran again (started, resumed, reconnected).
    down_s: float | None = None
    error: str | None = None  # why the suite could not inject or heal it, if it could not


class Injector:
    def __init__(self, stack: Stack, traffic: Traffic, *, seed: int = 11) -> None:
        self.stack = stack
        self.traffic = traffic
        self.rng = random.Random(seed)  # noqa: S311 - fault choice, not security
        self.faults: list[Fault] = []
        # The lanes under a fault (a service, "broker", "database", "webhook"), each with its fault's target.
        self.busy: dict[str, str] = {}
        self.t0 = time.monotonic()
        self.t0_wall = datetime.now(UTC)  # a fault's `at` is seconds from here (the logs' clock)
        self._admin: AIOKafkaAdminClient | None = None
        self.http = httpx.AsyncClient()  # the readiness probes'
        self._topics: list[str] = []

    async def run(self, *, seconds: float, faults: int, every_s: float) -> None:
        """Inject `faults` faults, at most one every `every_s`, each as soon as its kind has a target that is
        not faulted already; stop after `seconds` if fewer were injected by then."""
        async with admin_client(kafka.admin_connection()) as admin, self.http:
            self._admin = admin
            self._topics = [t for t in await admin.list_topics() if t.startswith("chaos-")]
            end = time.monotonic() + seconds
            running: set[asyncio.Task[None]] = set()
            while time.monotonic() < end and len(self.faults) < faults:
                started = await self._one()
                if started is not None:
                    running.add(started)
                    started.add_done_callback(running.discard)
                    if len(self.faults) % 50 == 0:
                        say(f"chaos: {len(self.faults)} faults injected, {len(running)} healing")
                await asyncio.sleep(every_s if started is not None else 0.2)
            await asyncio.gather(*running, return_exceptions=True)
            self._admin = None

    async def _one(self) -> asyncio.Task[None] | None:
        kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        plan = await self._plan(kind)
        if plan is None:
            return None
        target, lock, action = plan
        fault = Fault(kind, target, round(time.monotonic() - self.t0, 1))
        self.faults.append(fault)
        self.busy[lock] = target

        async def inject() -> None:
            try:
                fault.recovery_s = await action(fault)
            except Exception as exc:  # a fault the suite could not inject or heal is reported, not hidden
                fault.error = f"{type(exc).__name__}: {exc}"[:300]
                log.exception("fault failed", extra={"fields": {"kind": kind, "target": target}})
            finally:
                del self.busy[lock]

        return asyncio.create_task(inject(), name=f"{kind}:{target}")

    async def _plan(self, kind: str) -> tuple[str, str, Callable[[Fault], Awaitable[float | None]]] | None:
        if kind.startswith("service"):
            free = [c for c in self.stack.children if _service(c) not in self.busy]
            if not free:
                return None
            child = self.rng.choice(free)
            action = self._kill if kind == "service_kill" else self._freeze
            return child.name, _service(child), lambda fault: action(child, fault)
        if kind.startswith("broker"):
            if "broker" in self.busy or not await self._in_sync():
                return None
            node = self.rng.choice(kafka.nodes())
            if kind == "broker_partition" and node.veth is None:
                return None  # the nodes share the host's network (not root): no link to cut
            actions = {"broker_kill": self._kill_node, "broker_freeze": self._freeze_node}
            act = actions.get(kind, self._cut_node)
            return f"kafka-{node.id}", "broker", lambda fault: act(node, fault)
        if kind == "database_stop":
            return None if "database" in self.busy else ("postgres", "database", self._stop_database)
        if "webhook" in self.busy:
            return None
        seconds = self.rng.uniform(2, 10)
        if kind == "webhook_down":
            return "webhook-bank", "webhook", lambda _: self._timed(self.traffic.hook_outage(seconds))
        return (
            "webhook-bank",
            "webhook",
            lambda _: self._timed(self.traffic.hook_slowness(seconds, delay_s=4.0)),
        )

    # -- services ----------------------------------------------------------------------------------------

    async def _kill(self, child: Child, fault: Fault) -> float | None:
        began = time.monotonic()
        signal_child(child, signal.SIGKILL)
        return await self._ready_again(child, began, fault)

    async def _freeze(self, child: Child, fault: Fault) -> float | None:
        began = time.monotonic()
        try:
            if signal_child(child, signal.SIGSTOP):
                await asyncio.sleep(self.rng.uniform(1, 4))
        finally:
            # Interrupted too, or a stopped process would outlive the suite (SIGCONT does nothing to a running
            # one, as when the stop was never sent).
            signal_child(child, signal.SIGCONT)
        return await self._ready_again(child, began, fault)

    async def _ready_again(self, child: Child, began: float, fault: Fault) -> float | None:
        """Until the instance's work is done again (returned): by itself, ready again, or by the other
        instance, ready and holding every partition of the service's groups with the faulted instance out
        of them; then on until the instance itself is ready (`fault.instance_ready_s`)."""
        await asyncio.sleep(0.5)  # the supervisor notices the exit
        assert child.url is not None
        other = next(c for c in self.stack.children if _service(c) == _service(child) and c is not child)
        groups = fleet_checks.SERVICE_GROUPS[_service(child)]
        resumed = None
        while time.monotonic() - began < HEALED_WITHIN_S:
            if await ready(self.http, child.url):
                fault.instance_ready_s = round(time.monotonic() - began, 2)
                return resumed if resumed is not None else fault.instance_ready_s
            if resumed is None:
                state = await readiness(self.http, other.url or "")
                if state == "ok" and not await self._taken_over(child, groups):
                    state = "partitions not moved"
                if state == "ok":
                    resumed = round(time.monotonic() - began, 2)
                else:
                    fault.waited_on = state
            await asyncio.sleep(0.25)
        return resumed

    async def _taken_over(self, child: Child, groups: tuple[str, ...]) -> bool:
        if not groups:
            return True
        try:
            assert self._admin is not None
            state = await asyncio.wait_for(fleet_checks.ownership(self._admin, groups), 5)
        except Exception:  # noqa: BLE001 - not answering is not taken over
            return False
        mine = f"{child.name}-"
        return all(
            g["owned_once"] and not any(m.startswith(mine) for m in g["member_ids"]) for g in state.values()
        )

    # -- Kafka nodes ---------------------------------------------------------------------------------------

    async def _kill_node(self, node: kafka.Node, fault: Fault) -> float | None:
        began = time.monotonic()
        proc = kafka.running_node(node)
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 30)
        await asyncio.sleep(self.rng.uniform(1, 6))
        await asyncio.to_thread(at_normal_priority, kafka.start_node, node)
        fault.down_s = _since(began)
        return await self._writable(began, fault)

    async def _freeze_node(self, node: kafka.Node, fault: Fault) -> float | None:
        began = time.monotonic()
        proc = kafka.running_node(node)
        if proc is not None:
            try:
                proc.send_signal(signal.SIGSTOP)
                await asyncio.sleep(self.rng.uniform(1, 8))
            finally:  # interrupted too (see _freeze)
                proc.send_signal(signal.SIGCONT)
        fault.down_s = _since(began)
        return await self._writable(began, fault)

    async def _cut_node(self, node: kafka.Node, fault: Fault) -> float | None:
        began = time.monotonic()
        await asyncio.to_thread(kafka.partition, node, True)
        try:
            await asyncio.sleep(self.rng.uniform(2, 10))
        finally:
            await asyncio.to_thread(kafka.partition, node, False)
        fault.down_s = _since(began)
        return await self._writable(began, fault)

    async def _writable(self, began: float, fault: Fault) -> float | None:
        """From the fault's start until every partition is writable (returned); then on until the node is
        back in full sync (`fault.instance_ready_s`, from the first of two answers in a row), so that no
        other node is faulted before."""
        writable = in_sync_at = None
        while time.monotonic() - began < HEALED_WITHIN_S:
            if writable is None and await self._partitions(_writable_on):
                writable = round(time.monotonic() - began, 2)
            if writable is not None and await self._in_sync():
                if in_sync_at is not None:
                    fault.instance_ready_s = in_sync_at
                    break
                in_sync_at = round(time.monotonic() - began, 2)
            else:
                in_sync_at = None
            await asyncio.sleep(0.5 if in_sync_at is not None else 0.25)
        return writable

    async def _in_sync(self) -> bool:
        return await self._partitions(_in_full_sync)

    async def _partitions(self, healthy: Callable[[dict[str, Any], set[int]], bool]) -> bool:
        assert self._admin is not None
        cluster = kafka.nodes()
        answering = await asyncio.gather(*(_answers(n) for n in cluster))
        live = {n.id for n, ok in zip(cluster, answering, strict=True) if ok}
        try:
            described = await asyncio.wait_for(self._admin.describe_topics(self._topics), 5)
        except Exception:  # noqa: BLE001 - not answering is not healthy
            return False
        return all(t["error_code"] == 0 and all(healthy(p, live) for p in t["partitions"]) for t in described)

    # -- the database and the webhook bank ----------------------------------------------------------------

    async def _stop_database(self, fault: Fault) -> float | None:
        began = time.monotonic()
        proc = postgres.running()
        if proc is not None:
            proc.send_signal(signal.SIGQUIT)  # immediate shutdown: no checkpoint, clients cut off
            await asyncio.to_thread(proc.wait, 30)
        await asyncio.sleep(self.rng.uniform(1, 5))
        await asyncio.to_thread(at_normal_priority, postgres.start_again)
        fault.down_s = _since(began)
        while time.monotonic() - began < HEALED_WITHIN_S:
            # An instance killed or frozen meanwhile heals as its own fault (and counts there); the
            # scorers, which keep their state in Kafka, are not waited for.
            others = [
                c
                for c in self.stack.children
                if c.name not in self.busy.values() and _service(c) in USES_POSTGRES
            ]
            answers = await asyncio.gather(*(ready(self.http, c.url or "") for c in others))
            if all(answers):
                return round(time.monotonic() - began, 2)
            fault.waited_on = ", ".join(c.name for c, ok in zip(others, answers, strict=True) if not ok)
            await asyncio.sleep(0.5)
        return None

    async def _timed(self, outage: Awaitable[None]) -> float | None:
        began = time.monotonic()
        await outage
        return round(time.monotonic() - began, 2)

    def by_kind(self) -> dict[str, int]:
        return dict(Counter(f.kind for f in self.faults))


def _since(began: float) -> float:
    return round(time.monotonic() - began, 2)


def _service(child: Child) -> str:
    return child.name.rsplit("-", 1)[0]  # ingest-2 → ingest, scorer-persons-1 → scorer-persons


def _writable_on(partition: dict[str, Any], live: set[int]) -> bool:
    in_sync = set(partition["isr"])
    return partition["leader"] in live and in_sync <= live and len(in_sync) >= 2


def _in_full_sync(partition: dict[str, Any], live: set[int]) -> bool:
    replicas = set(partition["replicas"])
    return partition["leader"] in live and replicas <= live and replicas <= set(partition["isr"])


async def _answers(node: kafka.Node) -> bool:
    """Whether the node's process accepts connections: a node killed and not yet started again does not,
    whatever the metadata still says of it. (A frozen one would: it is asked after its SIGCONT.)"""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(node.host, node.port), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
