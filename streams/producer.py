"""The idempotent producer every service uses: acks from all replicas, bounded waits, and no record whose
fate is unknown reported as not sent.

aiokafka keeps records it was handed and retries them (idempotently: the broker drops repeats) until
they are acknowledged or it gives up; a record it gives up on may still have been written (the broker
wrote it and could not answer). So a caller is told one of three things: acknowledged; `Unavailable`,
nothing was handed over and nothing can land; or `InDoubt`, handed over and not acknowledged yet (or
given up on) - it may land, and the caller must not send it again before it knows (the exception holds
the delivery still running; `streams.settle` reads back what landed once the producer gave up).

A producer with a transactional id (the outbox relay's, the blocklist feed's) publishes a batch in one
transaction. That bounds an attempt in doubt: starting a producer with the same id fences the old one,
after which nothing of it can land, so a relay taking over another's messages can read the topic back and
know; and a fenced producer's transaction fails (`Fenced`), its records never committed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.errors import KafkaConnectionError, KafkaError, ProducerFenced
from aiokafka.producer.transaction_manager import TransactionManager
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import RecordMetadata

from services.kit.errors import InDoubt, Unavailable
from streams.bootstrap import PASS_PAUSE_S, from_kafka, start_through_any_node
from streams.connection import KafkaConnection

MAX_REQUEST_BYTES = 1024 * 1024  # the largest record the producer takes (Kafka's default, the brokers' too)
PING_S = 2.0  # a readiness probe's wait for Kafka (the probes' own timeouts are a few seconds)


@dataclass(frozen=True)
class Record:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp_ms: int | None = None
    partition: int | None = None  # None: the key's partition (murmur2, as every Kafka client by default)


class DeliveryInDoubt(InDoubt):
    """Records handed to Kafka and not acknowledged yet: `delivery` resolves with their metadata once they
    are, or fails (InDoubt) if the producer gives up on them, or once they are settled if it took only part
    of them."""

    def __init__(self, message: str, delivery: asyncio.Future[list[RecordMetadata]]) -> None:
        super().__init__(message)
        self.delivery = delivery


class Fenced(InDoubt):
    """A transaction whose records were refused, before its commit was asked, because a producer with the
    same transactional id started since this one did: none of it is committed (that start aborted it). An
    InDoubt for callers that do not tell the two apart; the producer must `restart` before its next
    transaction. (A fence answered to the commit itself is InDoubt: the commit may have reached Kafka
    before the other producer's start, which then completed it.)"""


# How long a service's start-up tries to reach Kafka before it gives up (and its process is started
# again): within the start-up time its supervisor allows (2 minutes locally, 3 in the Helm chart).
START_WITHIN_S = 60.0


class Producer:
    def __init__(
        self,
        kafka: KafkaConnection,
        *,
        client_id: str,
        timeout_s: float = 10.0,
        linger_ms: int = 0,
        transactional_id: str | None = None,
        transaction_timeout_s: float = 60.0,
    ) -> None:
        """With a `transactional_id`, records go in transactions (`transact`), and whoever starts a
        producer with the same id fences this one (`fence`)."""
        # No linger by default: every caller hands a whole batch over before it waits, so the records are
        # batched anyway, and lingering only added its milliseconds to each batch's acknowledgement.
        self.timeout_s = timeout_s
        self.transactional_id = transactional_id
        self._options = {
            **kafka.options(),
            "client_id": client_id,
            "enable_idempotence": True,  # no duplicates from the producer's own retries
            "acks": "all",
            "linger_ms": linger_ms,
            "max_batch_size": 256 * 1024,
            "max_request_size": MAX_REQUEST_BYTES,
            "request_timeout_ms": int(timeout_s * 1000),
        }
        if transactional_id is not None:
            self._options |= {
                "transactional_id": transactional_id,
                "transaction_timeout_ms": int(transaction_timeout_s * 1000),
            }
        self._client: AIOKafkaProducer | None = None
        self._unsettled = False  # a transaction of this client may be open: `restart` before the next

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._client is None:
            raise RuntimeError("producer not started")
        return self._client

    async def start(self, *, within_s: float | None = None) -> None:
        """Connect, through any one node of the bootstrap list that answers (TimeoutError if none does):
        the list tried once, or, `within_s`, again and again for that long (a service's start-up, not
        ready meanwhile: `START_WITHIN_S`)."""
        # aiokafka binds to the running loop, so the client is made here, not in __init__.
        self._client = await start_through_any_node(
            lambda options: AIOKafkaProducer(**options),
            self._options,
            attempt_s=self.timeout_s,
            total_s=within_s,
        )

    async def stop(self) -> None:
        """Deliver what it holds within its timeout, and stop (in three timeouts at most: the delivery,
        the sender's end, the connections' close). aiokafka's own stop waits for good while a partition's
        leader is known but does not answer (its idempotent retries go on), which would hang the service's
        shutdown: what is left then is in doubt, as after a crash, and the callers' own read-back settles
        it (the ingest claims' sweep, the outbox relay)."""
        if self._client is not None:
            await _discard(self._client, self.timeout_s)

    @staticmethod
    def fits(record: Record) -> bool:
        """Whether the producer takes the record at all: no larger than a request may be. One that does
        not is refused for good, and a transaction holding it never commits."""
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, record.value, record.headers)
        return bool(size <= MAX_REQUEST_BYTES)

    @property
    def unsettled(self) -> bool:
        """Whether a transaction of this producer may be open (one in doubt): `restart` settles it."""
        return self._unsettled

    async def restart(self) -> None:
        """A new client in place of this one; with a transactional id, its start fences the old one: a
        transaction of the old that had not asked to commit is aborted, one that had is committed, and
        nothing of the old can land afterwards. What the topic then holds (read committed) is final."""
        old, self._client = self._client, None
        if old is not None:
            await _discard(old, self.timeout_s)
        await self.start()
        self._unsettled = False

    async def transact(self, records: Sequence[Record]) -> asyncio.Future[list[RecordMetadata]]:
        """Hand the records over in one transaction and return at once with a future of its commit.
        Unavailable: nothing was handed over (nothing can land). The future fails InDoubt when the commit
        is not known to have happened: call `restart` (before any other transaction), after which what
        landed is on the topic (read committed). The broker aborts a transaction not committed within the
        transaction timeout."""
        if self._unsettled:  # restarted first by the caller, who then knows what the old one left
            raise Unavailable("a transaction of this producer is in doubt: restart it first")
        try:
            self._unsettled = True
            await asyncio.wait_for(self._producer.begin_transaction(), self.timeout_s)
        except Exception as exc:
            if isinstance(exc, TimeoutError) or from_kafka(exc):
                raise _refused(exc) from exc
            raise
        try:
            delivery = await self.enqueue(records)
        except DeliveryInDoubt as exc:  # taken in part: the transaction is not committed
            delivery = exc.delivery
        return asyncio.ensure_future(self._commit(self._producer, delivery))

    async def _commit(
        self, client: AIOKafkaProducer, delivery: asyncio.Future[list[RecordMetadata]]
    ) -> list[RecordMetadata]:
        # The client the transaction began on: after a restart, the current one holds another (or none).
        acknowledged = await delivery
        restarted = client is not self._client
        if restarted:  # meanwhile: fenced, and a stopped client cannot commit
            raise InDoubt("the producer was restarted before the commit")
        try:
            await client.commit_transaction()
        except Exception as exc:
            if from_kafka(exc):
                raise InDoubt(f"Kafka did not confirm the commit: {type(exc).__name__}") from exc
            raise
        if client is self._client:
            self._unsettled = False
        return acknowledged

    async def send_all(self, records: Sequence[Record]) -> list[RecordMetadata]:
        """Send the records and wait until Kafka has acknowledged every one. Unavailable: nothing was
        handed over. InDoubt: not acknowledged within the timeout (or given up on); may still land."""
        delivery = await self.enqueue(records)
        try:
            return await asyncio.wait_for(asyncio.shield(delivery), self.timeout_s)
        except TimeoutError as exc:
            raise DeliveryInDoubt("Kafka has not acknowledged yet", delivery) from exc

    async def enqueue(self, records: Sequence[Record]) -> asyncio.Future[list[RecordMetadata]]:
        """Hand the records to the producer and return at once with a future of Kafka's acknowledgement of
        every one, so the caller can go on meanwhile; keyed records keep their order per partition either
        way. The future has no deadline of its own: it fails (InDoubt) only when the producer gives up.
        Unavailable when nothing was handed over; InDoubt (holding the delivery of what was) when part was."""
        futures: list[asyncio.Future[RecordMetadata]] = []
        try:
            for r in records:
                futures.append(
                    await self._producer.send(
                        r.topic,
                        r.value,
                        key=r.key,
                        partition=r.partition,
                        headers=r.headers or None,
                        timestamp_ms=r.timestamp_ms,
                    )
                )
        except Exception as exc:
            if not from_kafka(exc):
                raise
            if not futures:
                raise _refused(exc) from exc
            partial = asyncio.ensure_future(self._partly(futures, len(records), exc))
            raise DeliveryInDoubt("only part of the records was handed to Kafka", partial) from exc
        return asyncio.ensure_future(self._acknowledged(futures))

    async def _partly(
        self, futures: list[asyncio.Future[RecordMetadata]], of: int, refused: Exception
    ) -> list[RecordMetadata]:
        """The delivery of a batch Kafka took only in part: InDoubt once the part taken is settled, even
        acknowledged (the rest was never sent), so that the caller reads back what landed rather than take
        the whole batch for sent."""
        await self._acknowledged(futures)
        raise InDoubt(f"Kafka's producer took {len(futures)} of {of} records ({type(refused).__name__})")

    async def _acknowledged(self, futures: list[asyncio.Future[RecordMetadata]]) -> list[RecordMetadata]:
        try:
            return list(await asyncio.gather(*futures))
        except Exception as exc:
            if isinstance(exc, ProducerFenced) and self.transactional_id is not None:
                raise Fenced("fenced by a later producer of the same transactional id") from exc
            if from_kafka(exc):
                raise InDoubt(f"Kafka's producer gave up: {type(exc).__name__}") from exc
            raise

    async def partition_counts(
        self, names: Sequence[str], *, within_s: float | None = None
    ) -> dict[str, int | None]:
        """Each topic's partition count in the cluster's metadata (None: no such topic): asked once, or,
        `within_s`, again until Kafka answers, for that long, as `start` does (the node asked may be frozen
        or cut off as the instance starts)."""
        deadline = None if within_s is None else asyncio.get_running_loop().time() + within_s
        while True:
            try:
                cluster = await asyncio.wait_for(self._producer.client.fetch_all_metadata(), self.timeout_s)
            except (TimeoutError, KafkaError):
                if deadline is None or asyncio.get_running_loop().time() >= deadline:
                    raise
                await asyncio.sleep(PASS_PAUSE_S)
                continue
            return {name: len(cluster.partitions_for_topic(name) or ()) or None for name in names}

    async def ping(self) -> str:
        """Whether any Kafka node answers a metadata request within PING_S ("ok"). Every node is asked at
        once: asked one after another, a node frozen or cut off the network (whose partitions lead elsewhere
        meanwhile) would take the whole wait and make every instance unready together. Each is asked twice: on
        the producer's connection, there already (aiokafka opens new connections one at a time, and a connect
        to a cut-off node hangs), and on one of its own (the coordination group, which an idempotent producer
        does not use), where it does not wait behind produce requests waiting for their replicas."""
        asks: list[asyncio.Future[object]] = []
        error = "error: no Kafka node known"
        try:
            client = self._producer.client
            asks = [
                asyncio.ensure_future(_ask_metadata(client, node.nodeId, group))
                for node in client.cluster.brokers()
                for group in (ConnectionGroup.DEFAULT, ConnectionGroup.COORDINATION)
            ]
            for answer in asyncio.as_completed(asks, timeout=PING_S):
                try:
                    await answer
                    return "ok"
                except Exception as exc:  # noqa: BLE001 - health checks report (a timeout too)
                    error = f"error: {type(exc).__name__}"
        except Exception as exc:  # noqa: BLE001 - health checks report, they do not raise
            error = f"error: {type(exc).__name__}"
        finally:
            for ask in asks:
                ask.cancel()
            await asyncio.gather(*asks, return_exceptions=True)
        return error


async def _ask_metadata(client: AIOKafkaClient, node_id: int, group: ConnectionGroup) -> object:
    """A metadata request to the node, and once more, on a new connection, if the node closed the one it
    had. A broker closes a connection at its first request after `connections.max.reauth.ms` (aiokafka does
    not log in again in place): an idle producer's two connections, opened together, are closed by the
    same probe, which would otherwise find the instance unready once every interval."""
    try:
        return await client.send(node_id, MetadataRequest([]), group=group)
    except KafkaConnectionError:
        return await client.send(node_id, MetadataRequest([]), group=group)


async def _discard(client: AIOKafkaProducer, timeout_s: float) -> None:
    """Stop a client that may be waiting for a broker that does not answer: what it still holds after the
    timeout is in doubt (a successor's start fences it, if transactional), so it is not waited for
    longer; its tasks and connections are closed either way, and a commit waiting on it ends (aiokafka's
    stop leaves it waiting for good)."""
    discarded = InDoubt("producer discarded")
    if not await _step(client.stop(), timeout_s):  # stopped by hand below
        client._message_accumulator.fail_all(discarded)  # noqa: SLF001
        task = client._sender.sender_task  # noqa: SLF001
        if task is not None:
            # Cancelled, the sender still waits for its requests in flight (a coordinator looked for
            # with none to be found loops): not past the timeout.
            task.cancel()
            await _step(asyncio.gather(task, return_exceptions=True), timeout_s)
        await _step(client.client.close(), timeout_s)
    _settle(client, discarded)


async def _step(step: Awaitable[Any], timeout_s: float) -> bool:
    """One step of a stop, within the timeout: False if it failed or ran out. aiokafka's stop and close may
    end in a CancelledError of their own (a connection's task cancelled under them, as a stop cut short by
    its timeout leaves them): a failed step too, not this task's cancellation, which alone goes on up."""
    try:
        await asyncio.wait_for(step, timeout_s)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return False
    except Exception:  # noqa: BLE001 - any failure of a step is the same: the next one goes on
        return False
    return True


def _settle(client: AIOKafkaProducer, exc: Exception) -> None:
    """End a stopped client's open transaction, so that a commit waiting on it fails rather than waits for
    good. Its outcome, and the batches' it failed (a fenced producer's sender fails them, with nothing to
    wait on them), are read here, so asyncio does not log them as never retrieved."""
    txn: TransactionManager | None = client._txn_manager  # noqa: SLF001
    if txn is not None and (waiter := txn.wait_for_transaction_end()) is not None:  # one was begun
        if not waiter.done():
            txn.fatal_error(exc)  # fails this waiter (it replaces only one already done)
        abandon(waiter)
    batches = client._message_accumulator._batches  # noqa: SLF001
    for batch in itertools.chain.from_iterable(batches.values()):
        abandon(batch._drain_waiter)  # noqa: SLF001


async def fence(kafka: KafkaConnection, transactional_id: str, *, client_id: str, timeout_s: float) -> None:
    """Fence the producer of another process by its transactional id: a producer with that id is started
    (which ends the other's open transaction: aborted, or committed if it had asked to commit) and
    stopped. TimeoutError, or Kafka's error, if that could not be done."""
    producer = Producer(kafka, client_id=client_id, timeout_s=timeout_s, transactional_id=transactional_id)
    try:
        await producer.start()
    finally:
        await producer.stop()


def abandon(delivery: asyncio.Future[Any]) -> None:
    """A delivery its caller gave up on (its outcome settled by fencing, or read back from the topic): its
    result is read when it comes, so asyncio does not log it as never retrieved."""
    delivery.add_done_callback(_read)


def _read(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled():
        delivery.exception()


def _refused(exc: Exception) -> Unavailable:
    return Unavailable(f"Kafka refused the records: {type(exc).__name__}")
