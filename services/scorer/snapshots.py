"""State that survives: each stage partition's state is written, now and then, to the compacted
`scorer.snapshots` topic with the input offsets it reflects; an instance given the partition loads the
newest snapshot, reads the input again from those offsets and stays silent until it reaches the offsets
the group had committed (what lies between was already forwarded or alerted on by the previous owner).

An eager rebalance takes every partition from every member and gives most of them back: a partition given
back to the member that held it, with nothing committed meanwhile, keeps the state in memory. A
revocation writes a partition's snapshot only when the input handled since its last one is longer than a
bound (`revoke_tail`): the group waits for every member's revocation, and the next owner replays a short
tail faster than the revocation would write it. Nor does a revocation wait for Kafka to acknowledge its
snapshots (or a periodic one being written) past a budget (`revoke_budget_s`): with a node down, that wait
held whole groups for tens of seconds in fault runs. What is not acknowledged by then lands in the background;
the next owner may read an older snapshot meanwhile, which agrees with its own offsets as any snapshot
does, and replays more. A clean stop, which nobody waits for, waits for them all.

Snapshots are zlib-compressed JSON of plain values (`models.features.codec`): nothing in them is executed
on load, and state from feature code with another layout is refused (the partition then starts empty).
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from services.kit.logging import log_fields
from services.scorer import metrics
from services.scorer.forked import ChildFailed, ForkedEncoding
from streams import topics
from streams.bootstrap import start_through_any_node
from streams.connection import KafkaConnection

log = logging.getLogger(__name__)
FORMAT = 1
MAX_BYTES = 64 * 1024 * 1024  # as the topic's max.message.bytes


@dataclass(frozen=True)
class Snapshot:
    stage: str  # "persons" or "accounts"
    partition: int
    offsets: dict[str, int]  # input topic → the next offset to read after the state
    layout: str  # models.features.codec.layout of the state classes
    state: Any
    taken_at: float  # unix seconds

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "stage": self.stage,
            "partition": self.partition,
            "offsets": self.offsets,
            "layout": self.layout,
            "taken_at": self.taken_at,
            "state": self.state,
        }
        return zlib.compress(orjson.dumps(body), 1)  # level 1: a revocation waits for it

    @classmethod
    def from_bytes(cls, raw: bytes) -> Snapshot:
        body = orjson.loads(zlib.decompress(raw))
        if body.get("format") != FORMAT:
            raise ValueError(f"snapshot format {body.get('format')!r}")
        return cls(
            body["stage"], body["partition"], body["offsets"], body["layout"], body["state"], body["taken_at"]
        )


class SnapshotStore:
    """Writes and reads the snapshot topic; one partition per stage partition, so the newest snapshot of
    a stage partition is the last record of its own partition (see streams.topics.SNAPSHOTS)."""

    def __init__(self, kafka: KafkaConnection, *, prefix: str, timeout_s: float = 10.0) -> None:
        self.topic = topics.name(topics.SNAPSHOTS, prefix)
        self.kafka = kafka
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def start(self, *, within_s: float | None = None) -> None:
        """Start both clients, each through any node (`Producer.start`; `within_s` likewise)."""
        # Its own clients: snapshots need a far larger request size than events, and reading one
        # partition's last record is an assign-and-seek, outside any consumer group.
        self._producer = await start_through_any_node(
            lambda options: AIOKafkaProducer(
                **options,
                client_id="stopline-scorer-snapshots",
                enable_idempotence=True,
                acks="all",
                max_request_size=MAX_BYTES,
                request_timeout_ms=int(self.timeout_s * 1000),
            ),
            self.kafka.options(),
            attempt_s=self.timeout_s,
            total_s=within_s,
        )
        self._reader = await start_through_any_node(
            lambda options: AIOKafkaConsumer(
                **options,
                group_id=None,
                enable_auto_commit=False,
                max_partition_fetch_bytes=MAX_BYTES,
                fetch_max_bytes=MAX_BYTES,
                request_timeout_ms=int(self.timeout_s * 1000),
            ),
            self.kafka.options(),
            attempt_s=self.timeout_s,
            total_s=within_s,
        )

    async def stop(self) -> None:
        for client in (self._producer, self._reader):
            if client is not None:
                await client.stop()

    @staticmethod
    def partition_of(stage: str, partition: int) -> int:
        return partition if stage == "persons" else topics.EVENT_PARTITIONS + partition

    async def save(self, stage: str, partition: int, raw: bytes) -> None:
        """Write an encoded snapshot (`Snapshot.to_bytes`) and wait for Kafka's acknowledgement."""
        assert self._producer is not None, "snapshot store not started"
        await asyncio.wait_for(
            self._producer.send_and_wait(
                self.topic,
                raw,
                key=f"{stage}/{partition}".encode(),
                partition=self.partition_of(stage, partition),
            ),
            self.timeout_s,
        )

    async def load(self, stage: str, partitions: Iterable[int]) -> dict[int, Snapshot | None]:
        """The newest snapshot of each stage partition, or None where there is none (or it cannot be
        read). All are read at once: a member given half a group's partitions after a rebalance
        processes none of them until they are all restored."""
        assert self._reader is not None, "snapshot store not started"
        wanted = {TopicPartition(self.topic, self.partition_of(stage, p)): p for p in partitions}
        found: dict[int, Snapshot | None] = {p: None for p in wanted.values()}
        if not wanted:
            return found
        async with self._lock:
            self._reader.assign(list(wanted))
            ends = await self._reader.end_offsets(list(wanted))
            waiting = {tp for tp, end in ends.items() if end > 0}
            # Only partitions with a snapshot stay assigned, each at its last record: one with no position
            # would have its node's fetches wait for an offset lookup first.
            self._reader.assign(list(waiting))
            for tp in waiting:
                self._reader.seek(tp, ends[tp] - 1)
            deadline = time.monotonic() + self.timeout_s
            raw: dict[int, bytes | None] = {}
            while waiting and time.monotonic() < deadline:
                got = await self._reader.getmany(*waiting, timeout_ms=200)
                for tp, records in got.items():
                    if records and tp in waiting:
                        waiting.discard(tp)
                        raw[wanted[tp]] = records[0].value
                        deadline = time.monotonic() + self.timeout_s  # the time is for each one to come
            if waiting:
                missing = sorted(wanted[tp] for tp in waiting)
                raise TimeoutError(f"snapshots {stage}/{missing} not read within {self.timeout_s}s")
        # Decoded off the loop (as is the state's restoring, in `Checkpoints.rewind`): seconds of work
        # under load, and a loop held that long misses the group's heartbeats, which expels the member
        # and starts another rebalance.
        for partition, value in raw.items():
            found[partition] = await asyncio.to_thread(self._decode, value, stage, partition)
        return found

    @staticmethod
    def _decode(raw: bytes | None, stage: str, partition: int) -> Snapshot | None:
        try:
            return Snapshot.from_bytes(raw or b"")
        except (ValueError, zlib.error, KeyError) as exc:
            log.error(
                "unreadable snapshot ignored",
                extra=log_fields(stage=stage, partition=partition, reason=str(exc)),
            )
            return None


@dataclass
class _Kept:
    """A revoked partition's bookkeeping, kept until the assignment that follows says whether it is back."""

    positions: dict[TopicPartition, int]
    written: dict[str, int] | None
    saved_at: float | None
    # Inputs still being read again after a restore: where that replay was to end (the committed offset
    # the partition was assigned with).
    replaying: dict[TopicPartition, int] = field(default_factory=dict)

    def unchanged(self, tp: TopicPartition, committed: int | None) -> bool:
        """Whether nothing was committed on `tp` since the revocation. Mid-replay, the runner commits
        nothing below the replay's end (`ConsumerRunner.replays`): the group is still there."""
        if tp in self.replaying:
            return committed == self.replaying[tp]
        return _same_start(committed, self.positions.get(tp))


ENCODED_AT_ONCE = 2


class Checkpoints:
    """The snapshot bookkeeping of one stage: the input offsets its state reflects, when each partition
    was last written, and which records are being read again after a restore (their output suppressed).

    The stage supplies `export(partition)`, `restore(partition, state)` and `drop(partition)` (forget
    its state: only Checkpoints decides when, as a revoked partition's state may be kept); `layout`
    names its state classes. `interval_s` 0 writes after every committed batch, before the
    next (deterministic, for tests); otherwise a forked child encodes every partition due (see
    `services.scorer.forked`). A revocation writes the partitions more than `revoke_tail` input records
    past their last snapshot (0: every one with anything new), and waits for their acknowledgement (and a
    periodic snapshot's) `revoke_budget_s` at most."""

    def __init__(
        self,
        store: SnapshotStore | None,
        *,
        stage: str,
        layout: str,
        interval_s: float,
        export: Callable[[int], Any],
        restore: Callable[[int, Any], None],
        drop: Callable[[int], None],
        revoke_tail: int = 0,
        revoke_budget_s: float = math.inf,
    ) -> None:
        self.store = store
        self.stage = stage
        self.layout = layout
        self.interval_s = interval_s
        self.revoke_tail = revoke_tail
        self.revoke_budget_s = revoke_budget_s
        self._export = export
        self._restore = restore
        self._drop = drop
        self.positions: dict[TopicPartition, int] = {}
        self.replay_until: dict[TopicPartition, int] = {}
        self._saved_at: dict[int, float] = {}
        self._written: dict[int, dict[str, int]] = {}  # the input offsets of each partition's last snapshot
        self.held: set[int] = set()  # partitions whose state this instance holds
        self.replayed = 0  # records read again after restores, output suppressed (tests read it)
        self.restored: dict[int, dict[str, int]] = {}  # partition → the offsets its snapshot reflected
        self.kept: dict[int, _Kept] = {}  # revoked partitions whose state is still in memory
        self.reused = 0  # partitions given back and resumed from the state in memory (tests read it)
        self._background: asyncio.Task[None] | None = None  # a periodic snapshot a child is encoding
        self._writing: set[asyncio.Task[None]] = set()  # every snapshot write not yet ended
        # The offsets of the newest snapshot sent of each partition: an older one is not sent after it (a
        # periodic snapshot a child encoded before a revocation wrote a newer one would overtake it).
        self._sent: dict[int, dict[str, int]] = {}
        # Snapshots written at once (a revocation) are encoded two at a time: each holds its partition's
        # exported state and encoding meanwhile, and under the GIL more threads would not encode faster.
        self._encoding = asyncio.Semaphore(ENCODED_AT_ONCE)
        self.written_by_child = 0  # tests read it

    def replaying(self, tp: TopicPartition, offset: int) -> bool:
        """Whether this record was handled by the partition's previous owner (its output is out)."""
        until = self.replay_until.get(tp)
        if until is None:
            return False
        if offset + 1 >= until:
            del self.replay_until[tp]  # this is the last record handled before (or a later one)
        if offset < until:
            self.replayed += 1
            metrics.REPLAYED.labels(self.stage).inc()
            return True
        return False

    async def rewind(self, committed: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
        """ConsumerRunner hook on assignment (before the owner's `assigned`): resume each partition from
        the state kept since its revocation if nothing was committed meanwhile, else restore its newest
        snapshot; return the offsets to read from (the snapshot's); replay ends at the committed offsets.
        Kept partitions not given back are dropped. Called again after a failure (snapshots not read in
        time), it goes on: a partition resumed already is held, and read from where its kept state is (its
        committed offset, or its position mid-replay); nothing is held of one whose snapshot was not read."""
        by_partition: dict[int, list[TopicPartition]] = defaultdict(list)
        for tp in committed:
            by_partition[tp.partition].append(tp)
        seek: dict[TopicPartition, int] = {}
        for partition in [p for p in self.kept if p not in by_partition]:
            del self.kept[partition]  # another member has it now
            self._drop(partition)
        # A partition assigned again without being revoked (aiokafka may rejoin with an empty
        # revocation) keeps its state: the state in memory is newer than any snapshot, and the consumer's
        # position is right.
        new: dict[int, list[TopicPartition]] = {}
        for partition, tps in sorted(by_partition.items()):
            if partition in self.held:
                # Held (a first call failed, or aiokafka assigned it again without revoking it): one
                # resumed mid-replay reads on from where its state is, not from the committed offset. (One
                # replayed from the start of its input has no position before its first commit; the
                # consumer's own is right.)
                seek.update(
                    {tp: self.positions[tp] for tp in tps if tp in self.replay_until and tp in self.positions}
                )
                continue
            kept = self.kept.pop(partition, None)
            # Only the very topic-partitions it had (co-partitioned topics may be split between members
            # while a group changes), and nothing committed on any since.
            if (
                kept is not None
                and set(kept.positions) <= set(tps)
                and all(kept.unchanged(tp, committed[tp]) for tp in tps)
            ):
                self._resume(partition, kept, seek)
                continue
            if kept is not None:
                self._drop(partition)  # committed past what this member did, or split: its state is stale
            new[partition] = tps
        snapshots = await self.store.load(self.stage, new) if self.store else {}
        for partition, tps in new.items():
            self.held.add(partition)
            for tp in tps:
                if committed[tp] is not None:
                    self.positions[tp] = committed[tp]  # type: ignore[assignment]
            snapshot = snapshots.get(partition)
            if snapshot is not None and snapshot.layout != self.layout:
                metrics.SNAPSHOTS.labels(self.stage, "refused").inc()
                log.warning(
                    "snapshot of another state layout ignored",
                    extra=log_fields(stage=self.stage, partition=partition),
                )
                snapshot = None
            if snapshot is None:
                # No usable snapshot but work was committed: the state can only be rebuilt from the
                # start of the retained input (silently). Rare: the first commit of a partition writes
                # one (its time of last save stays unset), so this is a first deployment or a crash
                # within the first batch.
                for tp in tps:
                    done = committed[tp]
                    if done:
                        seek[tp] = 0  # before the log start: the consumer resets to the earliest
                        self.positions.pop(tp, None)
                        self.replay_until[tp] = done
                continue
            self._saved_at[partition] = time.monotonic()
            self._written[partition] = snapshot.offsets  # the tail a revocation would leave starts here
            # In a worker thread: the loop answers the group's heartbeats meanwhile. Nothing else touches
            # the partition's state: the runner's lock is held through the assignment.
            await asyncio.to_thread(self._restore, partition, snapshot.state)
            self.restored[partition] = snapshot.offsets
            metrics.SNAPSHOTS.labels(self.stage, "restored").inc()
            for tp in tps:
                # A topic missing from the snapshot had nothing read when it was taken: all of it is new.
                start = snapshot.offsets.get(tp.topic, 0)
                seek[tp] = start
                self.positions[tp] = start
                done = committed[tp]
                if done is not None and done > start:
                    self.replay_until[tp] = done
            log.info(
                "partition state restored",
                extra=log_fields(stage=self.stage, partition=partition, offsets=snapshot.offsets),
            )
        return seek

    def _resume(self, partition: int, kept: _Kept, seek: dict[TopicPartition, int]) -> None:
        """A partition given back with nothing committed since its revocation: its state in memory is
        exactly at the committed offsets."""
        self.held.add(partition)
        for tp, offset in kept.positions.items():
            self.positions[tp] = seek[tp] = offset
        self.replay_until.update(kept.replaying)
        if kept.written is not None:
            self._written[partition] = kept.written
        if kept.saved_at is not None:
            self._saved_at[partition] = kept.saved_at
        self.reused += 1
        metrics.SNAPSHOTS.labels(self.stage, "kept").inc()

    async def after_commit(self, offsets: dict[TopicPartition, int]) -> None:
        """ConsumerRunner hook: the state now agrees with these offsets; write partitions due a snapshot."""
        self.positions.update(offsets)
        now = time.monotonic()
        due = [
            p
            for p in {tp.partition for tp in offsets}
            if now - self._saved_at.get(p, -math.inf) >= self.interval_s
        ]
        if self.interval_s <= 0:
            for partition in sorted(due):  # "after every batch": each touched partition, every time
                await self.save(partition)
        elif due and not self.saving:
            # A forked child encodes them while the loop goes on (encoding a partition takes far longer
            # than an event may wait). Each fork costs the loop a pause (the fork, then the
            # parent's first copy-on-write faults), so one child takes every partition half-way due too.
            self._save_in_child(self._half_due(now))

    async def idle(self) -> None:
        """ConsumerRunner hook: the input is quiet and everything handled is committed. A fork now delays
        no event, so partitions half-way due are written now rather than under the next burst."""
        if self.interval_s > 0 and not self.saving:
            self._save_in_child(self._half_due(time.monotonic()))

    def _half_due(self, now: float) -> list[int]:
        held = {tp.partition for tp in self.positions}
        return [p for p in sorted(held) if now - self._saved_at.get(p, -math.inf) >= self.interval_s / 2]

    @property
    def saving(self) -> bool:
        return self._background is not None and not self._background.done()

    async def settle(self) -> None:
        """Wait for every snapshot still being written: a periodic one (its child is killed after six
        times the store's timeout, and each write takes one at most), those of revocations. Before the
        store is closed."""
        while self._writing:
            await asyncio.wait(set(self._writing))

    def _track(self, write: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A write run in a task of its own, known to `settle` until it ends."""
        task = asyncio.create_task(write)
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
        return task

    async def release(self, partitions: set[TopicPartition], *, leaving: bool = False) -> None:
        """On revocation (or a clean stop, `leaving`): a last snapshot of the partitions whose tail since
        their last one is long; the partitions' state is kept for the assignment that follows (`rewind`),
        also when the snapshot is not written (what decides whether kept state is reused is the committed
        offsets, not the snapshot). Unless leaving, it waits `revoke_budget_s` at most from its start for
        a periodic snapshot being written and for Kafka's acknowledgements of its own, their encoding
        counted in (encoding always finishes: the loop may change the state next); acknowledgements not in
        by then land in the background. A snapshot that fails is counted and logged, not raised: it only
        makes the next owner's replay longer."""
        deadline = math.inf if leaving else time.monotonic() + self.revoke_budget_s
        numbers = {tp.partition for tp in partitions}
        try:
            if self.saving:
                assert self._background is not None
                # Its writes first: the tails below count from the snapshots it wrote.
                await asyncio.wait([self._background], timeout=_left(deadline))
            tails = {p: self._tail(p) for p in sorted(numbers)}
            due = [p for p, tail in tails.items() if tail > self.revoke_tail]
            short = sum(0 < tail <= self.revoke_tail for tail in tails.values())
            metrics.SNAPSHOTS.labels(self.stage, "skipped").inc(short)
            # Encoded two at a time, then written all at once: the whole group waits for this callback.
            encoded = await asyncio.gather(*(self._encoded(p) for p in due), return_exceptions=True)
            writes = set()
            for partition, done in zip(due, encoded, strict=True):
                if isinstance(done, BaseException):
                    self._not_written(done, partition)
                elif done is not None:
                    writes.add(self._track(self._write_or_count(partition, *done)))
            if writes:
                _, late = await asyncio.wait(writes, timeout=_left(deadline))
                metrics.SNAPSHOTS.labels(self.stage, "late").inc(len(late))
        finally:
            # Whatever the snapshots' fate, the partitions are no longer this member's: a held partition
            # assigned again would go on from its state, stale if another member has had it meanwhile.
            self._forget(numbers)

    def _forget(self, numbers: set[int]) -> None:
        for partition in numbers:
            # Kept until the next assignment: most partitions of an eager rebalance come back to the
            # member that had them. One mid-replay too (a rebalance follows another while the restarted
            # member joins), with where its replay ends: restoring it again would rebuild the same state.
            if partition not in self.held:
                continue  # given up already (a stop, then the group's own revocation)
            positions = {tp: o for tp, o in self.positions.items() if tp.partition == partition}
            replaying = {tp: o for tp, o in self.replay_until.items() if tp.partition == partition}
            if set(replaying) <= set(positions):
                self.kept[partition] = _Kept(
                    positions, self._written.get(partition), self._saved_at.get(partition), replaying
                )
            else:
                self._drop(partition)  # replayed from the start of its input: no position to resume at
        for tp in [tp for tp in self.positions if tp.partition in numbers]:
            del self.positions[tp]
        for tp in [tp for tp in self.replay_until if tp.partition in numbers]:
            del self.replay_until[tp]
        for partition in numbers:
            self._saved_at.pop(partition, None)
            self._written.pop(partition, None)
            self.held.discard(partition)

    def _offsets(self, partition: int) -> dict[str, int] | None:
        """The input offsets the partition's state agrees with, or None if it cannot be saved now."""
        offsets = {tp.topic: o for tp, o in self.positions.items() if tp.partition == partition}
        if self.store is None or not offsets:
            return None
        if any(tp.partition == partition for tp in self.replay_until):
            return None  # mid-replay, the state is not yet what the committed offsets say
        return offsets

    def _encode(self, partition: int, offsets: dict[str, int]) -> bytes:
        return Snapshot(
            self.stage, partition, offsets, self.layout, self._export(partition), time.time()
        ).to_bytes()

    def _unsaved(self, partition: int) -> dict[str, int] | None:
        """The partition's offsets if a snapshot at them can be taken and is not written yet (a quiet
        input, or a stop right after a periodic snapshot, changes nothing since the last one)."""
        offsets = self._offsets(partition)
        return None if offsets is None or offsets == self._written.get(partition) else offsets

    def _tail(self, partition: int) -> float:
        """The input records the next owner would replay if no snapshot were written now: 0 if one cannot
        be taken or nothing is new, all of them (infinite) if the partition has none yet."""
        offsets = self._unsaved(partition)
        if offsets is None:
            return 0
        written = self._written.get(partition)
        if written is None:
            return math.inf
        return sum(max(0, offset - written.get(topic, 0)) for topic, offset in offsets.items())

    async def save(self, partition: int) -> None:
        """Encode and write now, if there is anything new (after each committed batch, with no interval)."""
        encoded = await self._encoded(partition)
        if encoded is not None:
            await self._write(partition, *encoded)

    async def _encoded(self, partition: int) -> tuple[dict[str, int], bytes, float] | None:
        """The partition's offsets and snapshot, encoded now (None: nothing new to write), and when this
        began. In a worker thread, so the loop answers the group's heartbeats meanwhile; the runner's lock
        is held (a revocation, a commit, a stop), so nothing changes the state while it is read."""
        offsets = self._unsaved(partition)
        if offsets is None:
            return None
        began = time.perf_counter()
        async with self._encoding:
            raw = await asyncio.to_thread(self._encode, partition, offsets)
        return offsets, raw, began

    async def _write_or_count(
        self, partition: int, offsets: dict[str, int], raw: bytes, began: float
    ) -> None:
        try:
            await self._write(partition, offsets, raw, began)
        except Exception as exc:  # noqa: BLE001 - counted and logged: nobody awaits a write left landing
            self._not_written(exc, partition)

    def _not_written(self, exc: BaseException, partition: int | None = None) -> None:
        # Not a decision path: a missed snapshot only means a longer replay after a restart or a move.
        metrics.SNAPSHOTS.labels(self.stage, "failed").inc()
        outage = isinstance(exc, OSError | TimeoutError | KafkaError | ChildFailed)
        log.warning(
            "snapshots not written",
            extra=log_fields(stage=self.stage, partition=partition, reason=repr(exc)),
            exc_info=None if outage else exc,  # (a bug, in the export or the codec: where it is)
        )

    def _save_in_child(self, partitions: list[int]) -> None:
        wanted = {p: o for p in partitions if (o := self._unsaved(p)) is not None}
        if not wanted:
            return
        began = time.perf_counter()
        child = ForkedEncoding(lambda: b"".join(_framed(p, self._encode(p, o)) for p, o in wanted.items()))
        metrics.SNAPSHOT_BLOCKED_SECONDS.labels(self.stage).observe(time.perf_counter() - began)
        for partition in wanted:
            self._saved_at[partition] = time.monotonic()  # not chosen again while the child works
        self._background = self._track(self._finish(child, wanted, began))

    async def _finish(self, child: ForkedEncoding, wanted: dict[int, dict[str, int]], began: float) -> None:
        assert self.store is not None
        try:
            framed = await child.result(timeout_s=self.store.timeout_s * 6)
            for partition, raw in _unframed(framed):
                await self._write(partition, wanted[partition], raw, began)
                self.written_by_child += 1
        except (ChildFailed, OSError, TimeoutError, KafkaError, ValueError) as exc:
            self._not_written(exc)  # (the partitions are due again at the next interval)

    async def _write(self, partition: int, offsets: dict[str, int], raw: bytes, began: float) -> None:
        assert self.store is not None
        sent = self._sent.get(partition)
        if sent is not None and all(o <= sent.get(topic, -1) for topic, o in offsets.items()):
            return  # as old as one sent already (which lands after any sent before it): not sent again
        self._sent[partition] = offsets
        await self.store.save(self.stage, partition, raw)
        # Acknowledged after its partition was revoked (past a revocation's budget): known to its kept
        # state, if any; of a partition given up, this member knows nothing any more.
        if partition in self.held:
            self._saved_at[partition] = time.monotonic()
            self._written[partition] = offsets
        elif (kept := self.kept.get(partition)) is not None:
            kept.saved_at, kept.written = time.monotonic(), offsets
        metrics.SNAPSHOTS.labels(self.stage, "written").inc()
        metrics.SNAPSHOT_BYTES.labels(self.stage).observe(len(raw))
        metrics.SNAPSHOT_SECONDS.labels(self.stage).observe(time.perf_counter() - began)


def _left(deadline: float) -> float | None:
    """The time to a deadline, for `asyncio.wait` (None: no deadline)."""
    return None if deadline == math.inf else max(0.0, deadline - time.monotonic())


def _same_start(committed: int | None, kept: int | None) -> bool:
    """Whether a kept partition's state starts where the group's committed offset says. An input never
    committed (a quiet topic: no alert on the partition yet) is at 0 in a state restored from a snapshot
    that read none of it, which is where nothing committed starts too."""
    return (committed or 0) == (kept or 0)


_FRAME = struct.Struct(">IQ")  # partition, length of its snapshot


def _framed(partition: int, raw: bytes) -> bytes:
    return _FRAME.pack(partition, len(raw)) + raw


def _unframed(data: bytes) -> Iterator[tuple[int, bytes]]:
    at = 0
    while at < len(data):
        if len(data) - at < _FRAME.size:
            raise ValueError("truncated snapshot frame")
        partition, size = _FRAME.unpack_from(data, at)
        at += _FRAME.size
        if len(data) - at < size:
            raise ValueError("truncated snapshot")
        yield partition, data[at : at + size]
        at += size
