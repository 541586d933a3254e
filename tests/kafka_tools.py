"""Reading topics in tests: everything currently on a topic, records until a condition holds, and what a
consumer group has committed (the barrier for "everything before this was handled")."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import ClusterAuthorizationFailedError

from deploy.local import kafka as local_kafka
from deploy.local.common import free_port
from streams import topics as topic_names
from streams.acls import ADMIN, provision_institution
from streams.admin import admin_client, wait_for_leaders
from streams.connection import KafkaConnection, development_password
from streams.producer import Producer, Record

if TYPE_CHECKING:
    from tests.conftest import Infra

T = TypeVar("T")


@contextlib.contextmanager
def broker_frozen() -> Iterator[None]:
    """Every broker stopped (SIGSTOP): connections stay open, nothing is answered, until SIGCONT. Keep it
    under broker.session.timeout.ms (4 s): frozen longer, a broker is fenced as it runs again, and for a
    moment its metadata lists no broker (the next test's admin calls fail). A test that uses it is marked
    `alone` (make test runs it by itself): every test worker's Kafka is frozen with it."""
    pids = [p.pid for p in local_kafka.running()]
    assert pids, "the test broker is not running"
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not all(_stopped(pid) for pid in pids):
            assert time.monotonic() < deadline, "a broker thread did not stop within 10 s of its SIGSTOP"
            time.sleep(0.01)
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # one that ended meanwhile: the others still go on
                os.kill(pid, signal.SIGCONT)


def _stopped(pid: int) -> bool:
    """Whether every thread of the process is stopped: kill() returns before each thread has taken the
    SIGSTOP (a thread running on the other core goes on until the kernel interrupts it)."""
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            if stat.read_text().rsplit(")", 1)[1].split()[0] not in ("T", "t", "Z", "X"):
                return False
    return True


async def new_topic(infra: Infra, name: str, partitions: int = 1) -> str:
    """A topic of the test's own (one replica), once every partition has a leader."""
    async with admin_client(infra.kafka) as admin:
        await admin.create_topics([NewTopic(name, partitions, 1)])
        await wait_for_leaders(admin, {name: partitions}, 30)
    return name


async def read_topic(
    kafka: KafkaConnection,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord]], bool] | None = None,
    timeout_s: float = 10.0,
) -> list[ConsumerRecord]:
    """All records on the topic from the beginning; waits until `until(records)` holds (or, without
    `until`, until the end offsets present at the start are read)."""
    consumer = AIOKafkaConsumer(
        **kafka.options(), enable_auto_commit=False, group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())]
        if not parts:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - first use of a new topic
            parts = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for recs in batch.values():
                records.extend(recs)
            if until is not None:
                if until(records):
                    return records
            elif all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                return records
        if until is not None:
            raise TimeoutError(
                f"condition not met on {topic} within {timeout_s}s; saw {len(records)} records"
            )
        return records
    finally:
        await consumer.stop()


async def dead_letter_of(infra: Infra, value: bytes, *, group: str) -> dict[str, bytes]:
    """The headers of the dead letter the consumer `group` (unprefixed, e.g. "notifier-alerts") wrote of
    the record `value`, waited for: an alert both alerts consumers set aside has a letter from each."""
    consumer = f"{infra.prefix}{group}".encode()

    def mine(r: ConsumerRecord) -> bool:
        return r.value == value and dict(r.headers).get("consumer") == consumer

    letters = await read_topic(
        infra.kafka,
        topic_names.name(topic_names.DEAD_LETTER, infra.prefix),
        until=lambda records: any(mine(r) for r in records),
        timeout_s=30,
    )
    return next(dict(r.headers) for r in letters if mine(r))


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout_s: float = ..., every_s: float = ...
) -> T: ...
@overload
async def eventually(check: Callable[[], T | None], *, timeout_s: float = ..., every_s: float = ...) -> T: ...
async def eventually(check: Callable[[], Any], *, timeout_s: float = 10.0, every_s: float = 0.1) -> Any:
    """Poll an async or sync check until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = check()
        result = await outcome if inspect.isawaitable(outcome) else outcome
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(every_s)


async def on_kafka(
    infra: Infra, institution: str, kind: str, *, kafka: KafkaConnection | None = None
) -> KafkaConnection:
    """Give an institution its Kafka principal, topics and grants (on the session's Kafka, or on `kafka`,
    another cluster's administrator); return its connection once the broker applies them (an idempotent
    producer of the principal is let in: its grants are in force)."""
    admin = kafka or infra.kafka
    await provision_institution(admin, institution, kind=kind, prefix=infra.prefix)
    principal = admin.as_principal(institution)

    async def admitted() -> bool:
        producer = Producer(principal, client_id=f"grants-{institution}")
        try:
            await producer.start()
        except ClusterAuthorizationFailedError:
            return False  # the grants are committed but not yet applied by the broker
        finally:
            await producer.stop()
        return True

    await eventually(admitted, timeout_s=15, every_s=0.2)
    return principal


@dataclass
class Holdout:
    """`revoking` is set once a rebalance has begun (another member joined); the member rejoins only once
    `rejoin` is set."""

    revoking: asyncio.Event = field(default_factory=asyncio.Event)
    rejoin: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def member_that_never_rejoins(infra: Infra, topic: str, group: str) -> AsyncIterator[Holdout]:
    """A member of `group` holding `topic` that does not rejoin the next rebalance (until told to, or it
    leaves): the broker waits for it up to its rebalance timeout, and a runner joining meanwhile stays out of
    the group."""
    holdout = Holdout()

    class NeverRejoins(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
            if revoked:  # (aiokafka calls it before its first join too, with nothing)
                holdout.revoking.set()
                await holdout.rejoin.wait()

        async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
            pass

    stuck = AIOKafkaConsumer(
        **infra.kafka.options(),
        group_id=group,
        partition_assignment_strategy=(RangePartitionAssignor,),  # the runner's: the same protocol
        session_timeout_ms=30_000,
        rebalance_timeout_ms=60_000,
        max_poll_interval_ms=60_000,
        # Nothing to commit at its stop: its coordinator may be marked dead by then (the broker closed its
        # connection at a re-authentication while it hung in the listener), and aiokafka's last autocommit
        # would wait for one for ever.
        enable_auto_commit=False,
    )
    await stuck.start()

    async def polling() -> None:
        while True:
            await stuck.getmany(timeout_ms=100)

    stuck.subscribe([topic], listener=NeverRejoins())
    polls = asyncio.create_task(polling())
    try:
        await eventually(stuck.assignment, timeout_s=30)
        yield holdout
    finally:
        holdout.rejoin.set()
        polls.cancel()
        await asyncio.gather(polls, return_exceptions=True)
        await asyncio.wait_for(stuck.stop(), 30)


async def produce(kafka: KafkaConnection, records: Sequence[Record], *, client_id: str = "test") -> None:
    """Write the records as `kafka`'s principal (an institution's, say), each acknowledged."""
    producer = Producer(kafka, client_id=client_id)
    await producer.start()
    try:
        await producer.send_all(list(records))
    finally:
        await producer.stop()


async def committed(kafka: KafkaConnection, group: str, *topics: str) -> int:
    """The sum of the group's committed offsets on these topics, asked of Kafka by a client outside the
    group. A runner commits only after a batch's effects landed: everything below is handled."""
    async with admin_client(kafka) as admin:
        offsets = await admin.list_consumer_group_offsets(group)
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic in topics and meta.offset > 0)


async def ends(kafka: KafkaConnection, *topics: str) -> int:
    """How many records the topics hold (the sum of their end offsets)."""
    consumer = AIOKafkaConsumer(**kafka.options())
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - first use of a new topic
        parts = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or set()]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


async def _caught_up(kafka: KafkaConnection, group: str, topics: Sequence[str], want: int) -> bool:
    return await committed(kafka, group, *topics) >= want


async def drained(kafka: KafkaConnection, *stages: tuple[str, Sequence[str]], timeout_s: float = 30) -> None:
    """The barrier of a pipeline: each consumer group in turn has committed everything its topics held
    when its turn came. A stage commits only after its effects (records downstream, rows) landed, so
    once the last group is through, every effect of what was sent before this call is in place, and a
    negative assertion ("no alert about this person") can be trusted."""
    for group, topics in stages:
        want = await ends(kafka, *topics)
        await eventually(partial(_caught_up, kafka, group, topics, want), timeout_s=timeout_s, every_s=0.1)


SHORT_LOGIN_MS = 3_000  # how long a login lasts on the short-login node's connections


@contextlib.contextmanager
def short_login_kafka(where: Path) -> Iterator[KafkaConnection]:
    """A one-node Kafka of its own (the local stack's code, its state under `where`, two free ports) whose
    connections must log in again every SHORT_LOGIN_MS; yields its administrator. The session's Kafka
    asks every 5 minutes, as production: a test of what a lapsed login does would wait that long, and
    every client of the session would have its connection closed every few seconds."""
    broker, controller = free_port(), free_port()
    env = {
        **os.environ,
        "STOPLINE_LOCAL_DIR": str(where),
        "STOPLINE_KAFKA_BROKERS": "1",
        "STOPLINE_KAFKA_PORT": str(broker),
        "STOPLINE_KAFKA_CONTROLLER_PORT": str(controller),
        "STOPLINE_KAFKA_REAUTH_MS": str(SHORT_LOGIN_MS),
    }
    start = "from deploy.local import kafka; kafka.wait_ready(kafka.ensure_started()[0])"
    try:
        subprocess.run([sys.executable, "-c", start], env=env, check=True, timeout=300)  # noqa: S603
        yield KafkaConnection(
            bootstrap=f"127.0.0.1:{broker}", username=ADMIN, password=development_password(ADMIN)
        )
    finally:
        stop = "from deploy.local import kafka; kafka.stop()"
        subprocess.run([sys.executable, "-c", stop], env=env, check=False, timeout=120)  # noqa: S603
