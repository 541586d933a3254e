"""The one Kafka consumer loop every Stopline consumer runs.

Offsets are committed by hand, only after the handler has finished its effect (a row committed,
a message acknowledged), and always as the *next* offset to read: after every batch, or, with a commit
interval, at most that often (each commit is a round trip the next batch would wait for; what a crash
leaves uncommitted is read again, so only idempotent handlers take an interval). A handler may also
return its effect still landing (e.g. records Kafka has yet to acknowledge): the next batch is handled
meanwhile, and every commit first waits for all that is landing. A rebalance waits for the batch in
hand to finish and commits before partitions move (the whole group waits meanwhile): a batch being
retried after a failure (an outage may last minutes) is given up instead, uncommitted, and read again by
whoever gets its partitions, except by an owner of per-partition state (a failed attempt may have
half-applied it). On stop, the batch
in hand finishes, everything finished is committed, and the consumer leaves its group. Owners of
per-partition state may also resume from their own snapshots (`rewind`, a seek on assignment) and write
them after each commit (`after_commit`). Records read again from below the group's committed offset
(an older snapshot) are not committed: the group's offsets never go back. While one input of a partition
number is read again, its other inputs wait at the records their previous owner had not handled, so the
owner's state sees them in the order it first did. Each partition's lag and the
time of its last progress are exported, and the lag kept counting while a batch holds the loop (see LAG).
A handler that has not returned within `handler_max_s` is stuck: the runner is then not live (see STUCK).
A runner given `set_aside` does not stop on a record its handler keeps failing on: it sets the record
aside (e.g. a dead letter) and goes on (see `_one_at_a_time`), unless the record set aside just before
failed on the same error under another key (see `_one`). A runner given a `producer` (one only its
handler and `set_aside` hand records to) starts it before its consumer and stops it after its last commit.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, KafkaTimeoutError
from prometheus_client import Counter, Gauge, Histogram

from services.kit.logging import log_fields
from services.kit.outages import innermost
from services.kit.taskdump import awaits
from streams.bootstrap import start_through_any_node
from streams.connection import KafkaConnection
from streams.producer import Producer

log = logging.getLogger(__name__)

Batch = dict[TopicPartition, list[ConsumerRecord]]
# A handler's effect still landing (None: done when the handler returns); its failure stops the runner.
Landing = asyncio.Future[Any] | None
Handler = Callable[[Batch], Awaitable[Landing]]
# Given a record the handler still fails on when handled alone, and that failure: the record set aside (e.g.
# its dead letter handed to Kafka), returning its effect still landing as a handler does.
SetAside = Callable[[ConsumerRecord, Exception], Awaitable[Landing]]
# Given the committed offsets of newly assigned partitions (None: nothing committed yet), where to start
# reading instead, e.g. a state snapshot's offset; partitions left out start at their committed offset.
# Called on every assignment, an empty one too.
Rewind = Callable[[dict[TopicPartition, int | None]], Awaitable[dict[TopicPartition, int]]]
# Told the offsets of batches whose effects have landed, once their commit is done or refused (e.g. to
# snapshot state that agrees with them).
AfterCommit = Callable[[dict[TopicPartition, int]], Awaitable[None]]
# Told that no record has come for IDLE_AFTER_S and everything finished is committed (e.g. to snapshot
# state now). Not after one empty poll: under load those are 20 ms gaps between bursts.
OnIdle = Callable[[], Awaitable[None]]
IDLE_AFTER_S = 1.0
RETRY_MAX_S = 5.0  # the longest pause between two attempts at a failed batch
# An outage (`retry_while`) is tried again at least this often: an attempt while it lasts costs a refused
# connection, and the batch (and the runner's readiness, false while it retries) comes back within this
# long of the dependency's return rather than up to RETRY_MAX_S after it.
OUTAGE_RETRY_MAX_S = 1.0
# aiokafka hands some group failures to the poller (JoinGroup answered with an unknown error, for 15 s in
# one chaos run, while a node restarts) and rejoins once the poller has read them: polled again, for this
# long at most, before the runner gives up (an error that keeps coming, e.g. the group task dead, stops it:
# its process restarts). A new process would meet the same broker, so the bound outlasts a node's restart.
POLL_FAILING_MAX_S = 60.0
# What aiokafka hands every poll once its group task has died on an unexpected error (a connection it
# closed, in one chaos run): that task is never started again, so the consumer never rejoins. Stopped at
# once, its process starts again in seconds, rather than after POLL_FAILING_MAX_S.
GROUP_TASK_DEAD = "Unexpected error during coordination"
# How long a runner waits for its group to assign it partitions before it stops (`OutOfGroup`). A poll
# waits through a whole rebalance: the revocation (effects landing, the commit: a request timeout), the
# broker waiting for the slowest member (REBALANCE_TIMEOUT_MS), a join sent again, perhaps twice over.
# Above POLL_FAILING_MAX_S: polls that fail while out of the group stop the runner first, with their error.
ASSIGNMENT_WAIT_MAX_S = 120.0
REBALANCE_TIMEOUT_MS = 30_000
# A member learns that its group rebalances (a member joined, one was taken out: `streams.membership`) only
# from its next heartbeat's answer, and the rebalance waits for every member to rejoin: the heartbeat
# interval is what any rebalance waits. A fifth of the session timeout (1.2 s at the default 6 s), but
# no longer than this: a long session (a static member given time to restart) is no reason for every
# rebalance to wait longer (12 s at a 60 s session, and a joining member's JoinGroup timed out meanwhile).
HEARTBEAT_MAX_MS = 1_200
# How old a consumer's metadata (the partitions' leaders, the topics) may get: a pattern subscription
# finds a new topic at the next refresh. And aiokafka (0.14) does not refresh it when a partition's
# position has to be looked up (ListOffsets) and the node asked no longer leads the partition: it asks
# that node again every 100 ms until the periodic refresh (5 min by default), and nobody reads the
# partition meanwhile (up to 29 s seen after a Kafka node's restart in the fault suite).
METADATA_MAX_AGE_MS = 5_000
PATTERN_REFRESH_MS = METADATA_MAX_AGE_MS

# What the lag and progress gauges say, and how they stay true while the loop is held. The loop measures
# its partitions (`_measure`, at most every MEASURE_EVERY_S) from what its fetches last said: a partition's
# end is its last stable offset (what a read_committed reader can read: an open transaction's records do
# not wait for this member yet), its lag that end less the member's position (which moves past a commit
# marker: an idle transactional partition has no lag). A partition at its end, on a fetch answered within
# CAUGHT_UP_FRESH_S, is progress: an idle member is not stalled. While the loop is held (a handler stuck, a
# batch retried through an outage, a commit waiting), nothing is measured, and the fetches stop telling:
# aiokafka does not fetch a partition again while records it fetched wait to be handed over, so its
# highwater stays where the stall began. Reading it from another task would be safe but stale, and making
# the fetcher fetch would be its internals driven from outside. So the watcher (`_watch`, a task of the
# runner's) asks Kafka for the ends itself, every `stall_watch_s` while the loop has not measured:
# `end_offsets` is public API, one ListOffsets request (with the consumer's isolation level) that shares
# only the client's connections and metadata, as aiokafka's own tasks do, and leaves the fetcher's state
# alone. The watcher writes only the lag gauge, from offsets the loop left (`_unfinished`: a batch in
# hand counts from its first record), checked after its await against revocations (`generation`) and
# against the loop having measured meanwhile. It stops once a revocation has begun (`in_group` false): the
# partitions are on their way to another member, whose progress the alert takes (the freshest of any
# instance's), and a lag still growing here would be false. Progress only the loop moves.
MEASURE_EVERY_S = 1.0
CAUGHT_UP_FRESH_S = 10.0
STALL_WATCH_S = 5.0
LAG = Gauge("stopline_consumer_lag", "records not yet processed", ["group", "topic", "partition"])
PROGRESS = Gauge(
    "stopline_consumer_progress_timestamp_seconds",
    "when this member last made progress on the partition (Unix time): a batch of it committed, the "
    "partition found read to its end, or given to this member",
    ["group", "topic", "partition"],
)
RECORDS = Counter("stopline_consumer_records_total", "records processed", ["group", "topic"])
COMMITS_LOST = Counter(
    "stopline_consumer_commits_refused_total", "batches whose commit a rebalance refused", ["group"]
)
COMMITS_TIMED_OUT = Counter(
    "stopline_consumer_commits_timed_out_total",
    "commits the group coordinator did not answer within the request timeout",
    ["group"],
)
POLL_FAILURES = Counter(
    "stopline_consumer_poll_failures_total", "polls failed with a Kafka error and made again", ["group"]
)
# A member reassigned again and again is in a rebalance storm (members expelled while they restore state,
# rejoining by turns); how long each assignment takes to be read again is what its partitions wait.
ASSIGNMENTS = Counter(
    "stopline_consumer_assignments_total", "assignments the group gave this member (rebalances)", ["group"]
)
ASSIGNMENT_SECONDS = Histogram(
    "stopline_consumer_assignment_seconds",
    "from an assignment until its partitions are read again (state restored, positions sought)",
    ["group"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REWINDS_RETRIED = Counter(
    "stopline_consumer_rewinds_retried_total",
    "assignments whose state could not be restored for a Kafka outage, and was tried again",
    ["group"],
)
ABANDONED = Counter(
    "stopline_consumer_batches_abandoned_total",
    "batches being retried and given up for a rebalance (read again by the next owner)",
    ["group"],
)
HELD_BACK = Counter(
    "stopline_consumer_records_held_back_total",
    "records fetched and put back until another input of their partition finished its replay",
    ["group"],
)
# A revocation holds the whole group: no member is given partitions again until every member's has ended.
# One that takes long is logged with where its time went (the batch in hand finishing, the commit, the
# owner's state), which is where a slow recovery after a fault is looked for first.
SLOW_REVOCATION_S = 1.0
REVOCATION_SECONDS = Histogram(
    "stopline_consumer_revocation_seconds",
    "from a revocation until this member let its partitions go (batch in hand, commit, owner's state)",
    ["group"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
# A handler that never returns (an await on a connection gone half-open, a lock never granted, a bug
# looping) holds its partitions while their lag grows, and the group sees a member in good health. Past the
# connection's `handler_max_s` (60 s by default: the slowest batch measured is a scorer's, 24 s waiting under
# chaos faults for Kafka to take its output, and every await a handler makes on PostgreSQL has a 10 s
# timeout of its own, each attempt of a retried batch bounded apart) it is stuck: logged once with its
# partitions, first offsets and chain of awaits (code locations, no values), counted, and the runner is not
# live until it returns, so its supervisor restarts the process and its partitions go to another member.
# A handler that waits on purpose as long as Kafka takes (ingest's intake) is never stuck (`bounded=False`).
# Only the handler is bounded: the loop's other long waits are an owner's state (a rewind restoring
# snapshots, after_commit and on_idle writing them: the snapshot store's timeouts bound them) and
# Kafka taking the effects (a node's fault: the producer's own timeouts), none of which a restart would cure.
# The group's own bound on a loop that does not poll (max.poll.interval.ms, past which aiokafka gives up
# its membership: the stuck member drops out, never to rejoin) is two minutes, and at least
# POLL_BEYOND_HANDLER_S past the handler's: the process is restarted (three failed liveness probes) before
# the group drops it, and a static member back within its session timeout takes its partitions back.
MAX_POLL_INTERVAL_MS = 120_000
POLL_BEYOND_HANDLER_S = 60.0
STUCK = Counter(
    "stopline_consumer_stuck_total",
    "batches whose handler had not returned after the bound (the runner not live until it does)",
    ["group"],
)
BATCH_SECONDS = Histogram(
    "stopline_consumer_batch_seconds",
    "time to handle one batch (and to commit, when a commit is due)",
    ["group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class OutOfGroup(Exception):
    """The group assigned the runner nothing for `assignment_wait_max_s`. aiokafka can stay out of a group
    for good (a JoinGroup refused by a node that went down, never sent again, and no error for the
    poller), live but never ready; stopped, its process starts again and rejoins. Never caught to poll
    again: the poll it interrupts leaves aiokafka's fetcher counting a fetch in progress."""


_TICK_S = 1.0


class _LoopTime:
    """Time counted only while the event loop runs: between two counts at most a tick and a half. A loop
    that did not run (a synchronous test holding a test session's loop for minutes, a process stopped)
    is not a group that keeps a runner out."""

    def __init__(self) -> None:
        self.total = 0.0
        self._last: float | None = None

    def count(self) -> float:
        now = time.monotonic()
        if self._last is not None:
            self.total += min(now - self._last, 1.5 * _TICK_S)
        self._last = now
        return self.total

    def reset(self) -> None:
        self.total, self._last = 0.0, None


class PartitionOwner(Protocol):
    """Whoever keeps per-partition state is told when partitions arrive and leave. A clean stop is
    `leaving`: `revoked` is called with the whole assignment, with no batch in hand, and nobody else waits
    for it (a rebalance's revocation holds the whole group)."""

    async def assigned(self, partitions: set[TopicPartition]) -> None: ...

    async def revoked(self, partitions: set[TopicPartition], *, leaving: bool = False) -> None: ...


class _RevocationTime:
    """How long one revocation took, in spans: `mark(span)` ends the span begun at the last mark."""

    def __init__(self, group: str, n: int) -> None:
        self.group, self.n = group, n
        self.began = self._last = time.monotonic()
        self.spans: dict[str, float] = {}

    def mark(self, span: str) -> None:
        now = time.monotonic()
        self.spans[span] = round(now - self._last, 3)
        self._last = now

    def done(self) -> None:
        seconds = time.monotonic() - self.began
        REVOCATION_SECONDS.labels(self.group).observe(seconds)
        if seconds >= SLOW_REVOCATION_S:
            log.warning(
                "slow revocation",
                extra=log_fields(group=self.group, n=self.n, seconds=round(seconds, 3), **self.spans),
            )


class _Listener(ConsumerRebalanceListener):
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.runner.in_group = False  # rebalancing: not ready until the new assignment
        self.runner.revoking.set()  # a batch being retried is given up, not waited for
        spent = _RevocationTime(self.runner.group_id, len(revoked))
        try:
            await self._revoke(revoked, spent)
        finally:
            self.runner.revoking.clear()
            spent.done()

    async def _revoke(self, revoked: set[TopicPartition], spent: _RevocationTime) -> None:
        # The lock is held while a batch is handled and committed: waiting for it means every
        # finished record is committed before the partition goes to another member.
        async with self.runner.lock:
            spent.mark("batch")
            # A batch polled before the revocation (waiting for the lock meanwhile) is not handled after
            # it: the join that follows may take its partitions away while it runs, and its owner was
            # told they left. The new assignment reads from the offsets committed here.
            self.runner.generation += 1
            try:
                await self.runner.commit_finished(revoking=True)
            except Exception as exc:
                # Not a refused commit (that is handled): the owner's state may now be ahead of the
                # offsets it knows, and is not to be given up as if it agreed with them. The runner stops
                # on it (its process starts again, with nothing in memory); aiokafka logs the raise.
                self.runner.fail(exc)
                raise
            spent.mark("commit")
            self.runner.unrewound = None  # partitions not yet made ready are simply given up
            self.runner.rewound = {}  # (the old assignment's: no later seek may take it for the next's)
            if self.runner.owner is not None and revoked:
                await self.runner.owner.revoked(set(revoked))
                spent.mark("owner")
            self.runner.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra=log_fields(group=self.runner.group_id, n=len(assigned)))
        ASSIGNMENTS.labels(self.runner.group_id).inc()
        self.runner.assigned_at = time.monotonic()
        # Under the lock, and a new generation: the fetcher runs on during this callback, and a batch
        # fetched before it (from positions that the seek below or the new assignment replace) is dropped.
        try:
            async with self.runner.lock:
                self.runner.generation += 1
                if self.runner.rewind is not None:
                    # Restoring state takes seconds, and aiokafka sends no heartbeat until this callback
                    # returns: past the session timeout the member is expelled, and the group rebalances
                    # again (a storm, with both members restoring by turns). So the partitions are paused
                    # here and made ready by the runner's loop (`_rewind`), heartbeats going meanwhile.
                    self.runner.consumer.pause(*assigned)
                    self.runner.rewound = {}
                    self.runner.unrewound = set(assigned)
                    self.runner.rewind_now()
                    return  # not in the group (ready) until then
                if self.runner.owner is not None and assigned:
                    await self.runner.owner.assigned(set(assigned))
        except Exception as exc:  # noqa: BLE001 - any failure: the runner stops on it (below)
            # aiokafka logs a listener's failure and goes on: the member would read its partitions without
            # the state it did not restore (a snapshot not read while a node was down), never ready. The
            # runner stops on it instead; its process starts again and rejoins.
            self.runner.fail(exc)
            return
        self.runner.ready_again()


class ConsumerRunner:
    def __init__(
        self,
        *,
        kafka: KafkaConnection,
        group_id: str,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        handle: Handler,
        owner: PartitionOwner | None = None,
        max_records: int = 1000,
        poll_timeout_ms: int = 20,
        attempts: int = 1,
        retry_while: Callable[[Exception], bool] | None = None,
        set_aside: SetAside | None = None,
        producer: Producer | None = None,
        client_id: str | None = None,
        request_timeout_ms: int = 10_000,
        rewind: Rewind | None = None,
        after_commit: AfterCommit | None = None,
        commit_interval_ms: int = 0,
        on_idle: OnIdle | None = None,
        poll_failing_max_s: float = POLL_FAILING_MAX_S,
        assignment_wait_max_s: float = ASSIGNMENT_WAIT_MAX_S,
        bounded: bool = True,
    ) -> None:
        """`attempts` > 1 retries a failed batch with backoff; only for handlers that are idempotent.
        `retry_while` says which failures are an outage (e.g. `services.kit.outages.unavailable`): those
        are retried, with backoff, for as long as it lasts (not ready meanwhile), not `attempts` times.
        `set_aside` keeps one bad record from stopping the runner (see `_one_at_a_time`): refused with an
        `owner` or a `rewind` (per-partition state, which a failed attempt may have half-applied).
        `producer`: one only `handle` and `set_aside` use (e.g. `streams.dead_letter.DeadLetters`'), started
        in `run` before the consumer, given `poll_failing_max_s` to reach Kafka as the consumer's own start is
        after it (so up to twice that in all), so a service answers without Kafka meanwhile as it does while
        its consumer waits, and stopped once the last commit has waited for its records.
        `rewind` and `after_commit` let an owner keep state snapshots that agree with the offsets.
        `commit_interval_ms` > 0 commits finished batches at most that often instead of after each.
        `poll_failing_max_s`: how long polls, or an assignment's rewind, may keep failing on a Kafka outage
        (see `POLL_FAILING_MAX_S`) before it stops; `assignment_wait_max_s`, how long it may wait for the
        group to assign it partitions (`OutOfGroup`).
        `pattern` subscribes to every topic whose name matches (e.g. each institution's answers) instead
        of `topics`; a new matching topic is found within `PATTERN_REFRESH_MS`.
        `bounded=False` never tells the handler stuck (see STUCK): for a handler that waits, on purpose, as
        long as Kafka takes to acknowledge its records (an outage is no reason to restart it)."""
        if bool(topics) == bool(pattern):
            raise ValueError("give either topics or a pattern")
        if set_aside is not None and (owner is not None or rewind is not None):
            raise ValueError("set_aside is not for an owner of per-partition state (owner, rewind)")
        self.pattern = pattern
        self.group_id = group_id
        self.rewind = rewind
        self.request_timeout_s = request_timeout_ms / 1000
        self.after_commit = after_commit
        self.on_idle = on_idle
        self.poll_failing_max_s = poll_failing_max_s
        self.assignment_wait_max_s = assignment_wait_max_s
        self.topics = list(topics)
        self.handle = handle
        self.owner = owner
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.attempts = attempts
        self.retry_while = retry_while
        self.set_aside = set_aside
        self.producer = producer
        # The error the record set aside last failed on, and its key, until a record is handled (see `_one`):
        # its innermost (every refusal of the database is a `DBAPIError` to SQLAlchemy, whatever refused it).
        self._set_aside_on: tuple[type[BaseException], bytes | None] | None = None
        self.retrying = False  # a batch failed on an outage and waits for its next attempt
        self.commit_interval_s = commit_interval_ms / 1000
        self.finished: dict[TopicPartition, int] = {}  # handled, not yet committed: the next offsets
        self._landing: deque[tuple[Landing, dict[TopicPartition, int]]] = deque()  # handled, effect landing
        self._failure: BaseException | None = None  # an effect that did not land, an assignment not taken
        # Never: the first commit is due at once and the input counts as quiet until a batch comes,
        # whatever the monotonic clock reads (on Linux, the time since boot).
        self._committed_at = -math.inf
        self._records_at = -math.inf  # when the last batch came
        self.lock = asyncio.Lock()
        # Moves on each revocation, assignment and rewind: a batch fetched before one is not handled.
        self.generation = 0
        self.rewound: dict[TopicPartition, int] = {}  # where the last assignment's rewind started
        # Partitions a rewind has read again from below their committed offset, with that offset: a batch
        # read again is not committed over it (a next owner would read again less than was done, and send
        # its output again); the owner is still told it landed, its state being at its offsets.
        self.replays: dict[TopicPartition, int] = {}
        # Of those, the ones not read again to that offset yet. While one input of partition n is, the
        # other inputs of partition n (co-partitioned topics: one owner's state) hand over only records
        # their previous owner handled; the rest wait, their partitions paused (`_held_back`). Fetched
        # apart, a payment its previous owner never handled would otherwise come before the call or the
        # SIM change it handled, and be scored without it.
        self._replaying: dict[TopicPartition, int] = {}
        self._held_back: set[TopicPartition] = set()
        self._stopping = asyncio.Event()
        self.revoking = asyncio.Event()  # a rebalance waits for the lock
        self._options = dict(
            **kafka.options(),
            group_id=group_id,
            client_id=client_id or group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            partition_assignment_strategy=(RangePartitionAssignor,),
            fetch_max_wait_ms=poll_timeout_ms,
            request_timeout_ms=request_timeout_ms,
            # A killed or frozen member's partitions move after the session timeout (6 s by default:
            # another member takes them over well within 10 s; the event loop never stalls that long).
            # A static member (an instance name) that restarts within it takes them back with no
            # rebalance at all, so a crash-looping process does not stall the rest of its group. The
            # rebalance timeout is how long the others get to finish the batch in hand and rejoin.
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=min(max(kafka.session_timeout_ms // 5, 500), HEARTBEAT_MAX_MS),
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
            max_poll_interval_ms=max(
                MAX_POLL_INTERVAL_MS, int((kafka.handler_max_s + POLL_BEYOND_HANDLER_S) * 1000)
            ),
            group_instance_id=kafka.instance,
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )
        self._consumer: AIOKafkaConsumer | None = None
        self.started = asyncio.Event()
        self.in_group = False  # holds its assignment of the group's current generation
        # An assignment whose partitions wait (paused) for their rewind, done by the loop, not the callback.
        self.unrewound: set[TopicPartition] | None = None
        self._rewind_at = -math.inf  # a rewind that failed on an outage is tried again from then
        self._rewind_failures = 0  # this assignment's, in a row
        self._rewind_failing_since = -math.inf
        self._assigned_anew = asyncio.Event()
        self.assigned_at = 0.0  # when the group's last assignment came (monotonic)
        # Per held partition, the offset of the first record not yet handled (the lag is counted from it):
        # the loop's position when it measures, a batch in hand's first record while it is handled.
        self._unfinished: dict[TopicPartition, int] = {}
        self._measured_at = -math.inf  # when the loop last measured its partitions (monotonic)
        self._turned_at = math.inf  # when the loop last came round to measure (monotonic); not yet running
        self.stall_watch_s = STALL_WATCH_S
        self.handler_max_s = kafka.handler_max_s if bounded else math.inf
        self._handling_since: float | None = None  # when the handler in progress was called (monotonic)

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("consumer not running")
        return self._consumer

    def readiness(self) -> str:
        """ "ok" while the runner holds the partitions the group gave it; not while it is joining or
        rebalancing (then nobody may be processing some of the group's partitions)."""
        if (stuck := self.liveness()) != "ok":
            return stuck
        if self.retrying:
            return "error: retrying a failed batch (a dependency is down)"
        if self._holds_its_share():
            return "ok"
        return "error: not in its consumer group (joining or rebalancing)"

    def liveness(self) -> str:
        """ "ok" unless the handler has been running for `handler_max_s` or more (see STUCK)."""
        since = self._handling_since
        if since is not None and (held := time.monotonic() - since) >= self.handler_max_s:
            return f"error: a batch's handler has not returned for {held:.0f} s (stuck)"
        return "ok"

    def _holds_its_share(self) -> bool:
        # (a pattern no topic matches yet has nothing to hold)
        return self.in_group or (
            self.pattern is not None and self._consumer is not None and not self._consumer.subscription()
        )

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit it and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        watcher: asyncio.Task[None] | None = None
        try:
            # aiokafka binds to the running loop, so the client is made here, not in __init__. Kafka not
            # answering at the start (a node down as an instance restarts) is waited out, as a poll's
            # failures are, not a reason to restart the whole process (a scorer's reload costs seconds).
            if self.producer is not None:
                await self.producer.start(within_s=self.poll_failing_max_s)
            self._consumer = await start_through_any_node(
                lambda options: AIOKafkaConsumer(**options),
                self._options,
                attempt_s=self._options["request_timeout_ms"] / 1000,
                total_s=self.poll_failing_max_s,
            )
            if self.pattern is not None:
                self.consumer.subscribe(pattern=self.pattern, listener=_Listener(self))
            else:
                self.consumer.subscribe(self.topics, listener=_Listener(self))
            self.started.set()
            self._turned_at = time.monotonic()
            watcher = asyncio.create_task(self._watch(), name=f"consumer-watch {self.group_id}")
            poll_failures, failing_since = 0, None
            outside = _LoopTime()  # how long it has waited for the group to assign it
            while not self._stopping.is_set():
                if self._holds_its_share() or self.unrewound is not None:
                    outside.reset()  # (an assignment waiting for its rewind has a bound of its own)
                elif outside.count() > self.assignment_wait_max_s:
                    raise OutOfGroup(f"no assignment for {self.assignment_wait_max_s:.0f} s")
                generation = self.generation
                if self.unrewound is not None and (wait_s := self._rewind_at - time.monotonic()) > 0:
                    # Off the lock (a rebalance may come meanwhile); a new assignment ends it.
                    await self._pause(wait_s, also=self._assigned_anew)
                    continue
                try:
                    batch = await self._poll(outside)
                except KafkaError as exc:
                    poll_failures += 1
                    failing_since = failing_since or time.monotonic()
                    if GROUP_TASK_DEAD in str(exc):
                        raise
                    if time.monotonic() - failing_since > self.poll_failing_max_s:
                        raise
                    POLL_FAILURES.labels(self.group_id).inc()
                    if _logged(poll_failures):
                        log.warning(
                            "poll failed; polling again",
                            extra=log_fields(
                                group=self.group_id, failures=poll_failures, error=repr(exc)[:200]
                            ),
                        )
                    await self._pause(retry_delay(poll_failures, outage=True))
                    continue
                poll_failures, failing_since = 0, None
                async with self.lock:
                    if self._failure is not None:  # e.g. met by a rebalance callback meanwhile
                        raise self._failure
                    if self.unrewound is not None:
                        await self._rewind(self.unrewound)
                        continue  # the batch (if any) is of no paused partition: nothing lost by it
                    if not batch:
                        if self._commit_due():  # quiet input: what is finished is committed anyway
                            await self.commit_finished()
                        elif self.on_idle is not None and not self._pending() and self._quiet():
                            await self.on_idle()
                        await self._measure()
                        continue
                    if generation != self.generation:
                        self._refetch(batch)
                        continue
                    batch = self._in_step(batch)
                    if batch:
                        await self._process(batch)
                    await self._measure()
                    outside.reset()  # (fetched once assigned, before the callback said so)
            # A clean stop hands the partitions back: the owner is told, as on a rebalance (only here,
            # not after a failed batch, whose half-applied state must not be taken for finished work;
            # the batches finished before it are committed by neither: they are read again).
            async with self.lock:
                await self.commit_finished()
                if self.owner is not None and self.consumer.assignment():
                    await self.owner.revoked(set(self.consumer.assignment()), leaving=True)
        except Exception as exc:
            # Whatever stops the loop (a handler, an effect that did not land, a bug) is logged once,
            # here, with its traceback; nothing after the last commit is committed, nor is the owner
            # told of a revocation (its half-applied state must not be snapshotted) when leaving the
            # group calls the rebalance callback.
            self.fail(exc)
            log.exception("consumer stopped on an error", extra=log_fields(group=self.group_id))
            raise
        finally:
            self.in_group = False
            if watcher is not None:
                watcher.cancel()  # before the client stops: it may be asking Kafka for the ends
                await asyncio.gather(watcher, return_exceptions=True)
            if self._consumer is not None:
                await self._consumer.stop()
            if self.producer is not None:
                await self.producer.stop()
            log.info("consumer stopped", extra=log_fields(group=self.group_id))

    async def _poll(self, outside: _LoopTime) -> Batch:
        """One poll. aiokafka's waits, with no bound, for an assignment in progress to complete: waited
        for a second at a time, each counted as time out of the group, up to `assignment_wait_max_s`."""
        poll = asyncio.ensure_future(
            self.consumer.getmany(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
        )
        try:
            while True:
                done, _ = await asyncio.wait({poll}, timeout=_TICK_S)
                if done:
                    batch: Batch = poll.result()
                    return batch
                if outside.count() > self.assignment_wait_max_s:
                    raise OutOfGroup(f"no assignment for {self.assignment_wait_max_s:.0f} s")
        finally:
            poll.cancel()  # (a no-op once done) the runner stopped or cancelled leaves no poll behind

    async def _rewind(self, assigned: set[TopicPartition]) -> None:
        """Complete an assignment (under the lock): the owner's rewind (on an empty one too: the owner
        may hold state kept since the revocation, which the rewind takes back or drops), the seeks, the
        owner's `assigned`, then the partitions resume. A Kafka outage (a node down: its snapshots or
        offsets not read in time) has it tried again, the partitions still paused, for up to
        `poll_failing_max_s`: stopping would restart the process, which would meet the same outage and
        restore everything again, while the group's partitions wait. Any other failure, an outage past
        that, or a failure once the owner's rewind has returned stops the runner: its process starts again
        and rejoins (reading on without the state would leave it never ready). The owner's rewind must
        allow a second call after a failed one."""
        assert self.rewind is not None
        try:
            # Asked all at once (one request each, pipelined): one after another, a member given a few
            # dozen partitions spent seconds here while nobody processed them.
            ordered = list(assigned)
            answers = await asyncio.wait_for(
                asyncio.gather(*(self.consumer.committed(tp) for tp in ordered)), self.request_timeout_s
            )
            committed = dict(zip(ordered, answers, strict=True))
            self.rewound = await self.rewind(committed)
        except Exception as exc:
            if self._rewind_again(exc):
                return
            self.fail(exc)
            raise
        # Past the rewind, the owner holds the partitions at the offsets it returned: a failure now is not
        # tried again (a second rewind would not return them), it stops the runner.
        try:
            for tp in assigned:
                self.replays.pop(tp, None)
            self._replaying.clear()
            self._held_back.clear()  # (every assigned partition is resumed below)
            for tp, offset in self.rewound.items():
                self.consumer.seek(tp, offset)  # how aiokafka resumes from offsets kept outside the group
                done = committed.get(tp)
                if done is not None and offset < done:
                    self.replays[tp] = self._replaying[tp] = done
                if offset > (done or 0):
                    # A snapshot taken after a refused commit is ahead of the group's offsets: what lies
                    # between landed, so it is committed now (with nothing after it to read, the group
                    # would show that lag for ever).
                    self.finished[tp] = max(offset, self.finished.get(tp, offset))
            if self.owner is not None and assigned:
                await self.owner.assigned(set(assigned))
        except Exception as exc:
            self.fail(exc)
            raise
        self._rewind_failures = 0
        self.unrewound = None
        self.generation += 1  # a batch fetched before the seeks is dropped
        self.consumer.resume(*assigned)
        self.ready_again()

    def _rewind_again(self, exc: Exception) -> bool:
        """Whether a failed rewind is tried again (a second later): a Kafka outage, for up to
        `poll_failing_max_s` since this assignment's first failure."""
        now = time.monotonic()
        if not self._rewind_failures:
            self._rewind_failing_since = now
        outage = isinstance(exc, TimeoutError | KafkaTimeoutError) or (
            isinstance(exc, KafkaError) and exc.retriable
        )
        if not outage or now - self._rewind_failing_since > self.poll_failing_max_s:
            return False
        self._rewind_failures += 1
        REWINDS_RETRIED.labels(self.group_id).inc()
        if _logged(self._rewind_failures):
            log.warning(
                "assignment not restored; trying again",
                extra=log_fields(
                    group=self.group_id, failures=self._rewind_failures, error=type(exc).__name__
                ),
            )
        self._rewind_at = now + OUTAGE_RETRY_MAX_S
        self._assigned_anew.clear()
        return True

    def rewind_now(self) -> None:
        """A new assignment is rewound at once, with a bound of its own (not an earlier one's)."""
        self._rewind_at = -math.inf
        self._rewind_failures = 0
        self._assigned_anew.set()

    def ready_again(self) -> None:
        """The assignment is complete: its partitions are read from where they should be. Their progress is
        counted from now (a member stuck on its first batch is stalled since it was given the partition)."""
        self.in_group = True
        ASSIGNMENT_SECONDS.labels(self.group_id).observe(time.monotonic() - self.assigned_at)
        now = time.time()
        for tp in self.consumer.assignment():
            PROGRESS.labels(self.group_id, tp.topic, str(tp.partition)).set(now)

    def forget(self, revoked: set[TopicPartition]) -> None:
        """Partitions leaving this member: its gauges of them go (their next holder's count), and what it
        knew of where they were."""
        for tp in revoked:
            self._unfinished.pop(tp, None)
            for gauge in (LAG, PROGRESS):
                try:
                    gauge.remove(self.group_id, tp.topic, str(tp.partition))
                except KeyError:
                    pass  # not measured yet

    async def _measure(self) -> None:
        """Lag and progress of each held partition from what its fetches last said (see MEASURE_EVERY_S),
        at most that often. Not while an assignment waits for its rewind (positions about to be sought)."""
        now = time.monotonic()
        self._turned_at = now
        if now - self._measured_at < MEASURE_EVERY_S or self.unrewound is not None:
            return
        self._measured_at = now
        consumer = self.consumer
        positions: dict[TopicPartition, int] = {}
        try:
            # A partition fetched once has a position, which aiokafka returns at once; one that lost it
            # since (an offset out of range, being reset) is waited for, briefly: measured next time.
            async with asyncio.timeout(MEASURE_EVERY_S):
                for tp in consumer.assignment():
                    # (aiokafka asserts on the highwater of a partition not held: one may go meanwhile)
                    if tp in consumer.assignment() and consumer.highwater(tp) is not None:
                        positions[tp] = await consumer.position(tp)  # (None above: not fetched yet)
        except (TimeoutError, IllegalStateError):  # (one revoked meanwhile: the next measure goes without it)
            return
        wall_ms = time.time() * 1000
        held = consumer.assignment()
        for tp, position in positions.items():
            if tp not in held:
                continue
            lso, highwater = consumer.last_stable_offset(tp), consumer.highwater(tp)
            end = lso if lso is not None and lso >= 0 else highwater
            if end is None:  # assigned anew meanwhile: not fetched since
                continue
            self._unfinished[tp] = position
            if tp in self._replaying and position >= self._replaying[tp]:
                self._replays_read({tp})
            labels = (self.group_id, tp.topic, str(tp.partition))
            LAG.labels(*labels).set(max(end - position, 0))
            fetched_ms = consumer.last_poll_timestamp(tp)
            fresh = fetched_ms is not None and wall_ms - fetched_ms <= CAUGHT_UP_FRESH_S * 1000
            if position >= end and fresh:
                PROGRESS.labels(*labels).set(wall_ms / 1000)

    async def _watch(self) -> None:
        """While the loop has not measured for `stall_watch_s`, ask Kafka for its partitions' ends, and keep
        the lag true: the records behind a stuck batch (see MEASURE_EVERY_S). Progress is left as it was."""
        try:
            await self._watching()
        except Exception:
            # Only the gauges depend on it: the records go on, and the failure is told once.
            log.exception("consumer watch stopped", extra=log_fields(group=self.group_id))
            raise

    async def _watching(self) -> None:
        while True:
            await asyncio.sleep(self.stall_watch_s)
            turned_at = self._turned_at
            if not self.in_group or time.monotonic() - turned_at < self.stall_watch_s:
                continue
            generation, held = self.generation, self.consumer.assignment()
            asked = [tp for tp in self._unfinished if tp in held]
            if not asked:
                continue
            try:
                ends = await self.consumer.end_offsets(asked)  # bounded by the request timeout
            except KafkaError as exc:  # Kafka away: asked again next time
                log.debug("consumer ends not read", extra=log_fields(group=self.group_id, error=repr(exc)))
                continue
            # Measured by the loop meanwhile, or the partitions moved: the loop's numbers (or none) hold.
            if not self.in_group or self.generation != generation or self._turned_at != turned_at:
                continue
            held = self.consumer.assignment()
            for tp, end in ends.items():
                if tp in held and (unfinished := self._unfinished.get(tp)) is not None:
                    LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(max(end - unfinished, 0))

    def fail(self, exc: BaseException) -> None:
        """Stop the runner on `exc` (the first failure is the one it stops on)."""
        self._failure = self._failure or exc

    def _refetch(self, batch: Batch) -> None:
        """Partitions were revoked or reassigned while this batch was fetched: it may come from positions
        the assignment replaced. Read its partitions again from where the assignment starts them (the
        owner's rewind, or the batch's first record: everything before it was committed)."""
        assigned = self.consumer.assignment()
        for tp, records in batch.items():
            if tp in assigned and records:
                self.consumer.seek(tp, self.rewound.get(tp, records[0].offset))

    def _in_step(self, batch: Batch) -> Batch:
        """The batch less the records that must wait for another input of their partition to finish its
        replay (see `_replaying`): those partitions are sought back to the first such record and paused,
        and resumed once no input of their partition is replayed any longer. Within a batch the owner
        orders its records itself."""
        if not self._replaying and not self._held_back:
            return batch
        replaying = self._replays_read(
            {
                tp
                for tp, records in batch.items()
                if records and records[-1].offset + 1 >= self._replaying.get(tp, math.inf)
            }
        )
        kept: Batch = {}
        for tp, records in batch.items():
            if tp.partition not in replaying or tp in self._replaying:
                kept[tp] = records
                continue
            own = self.replays.get(tp, 0)  # its own replay's end (none left: every record is new)
            new = next((i for i, r in enumerate(records) if r.offset >= own), len(records))
            if new < len(records):
                self.consumer.seek(tp, records[new].offset)
                self.consumer.pause(tp)
                self._held_back.add(tp)
                HELD_BACK.labels(self.group_id).inc(len(records) - new)
            if new:
                kept[tp] = records[:new]
        return kept

    def _replays_read(self, read: set[TopicPartition]) -> set[int]:
        """Replays `read` to their end (by a batch, or by position: records deleted since have no batch)
        are over; partitions held back for replays now over are resumed. The partition numbers still
        being replayed."""
        for tp in read:
            self._replaying.pop(tp, None)
        replaying = {tp.partition for tp in self._replaying}
        if ready := {tp for tp in self._held_back if tp.partition not in replaying}:
            self._held_back -= ready
            self.consumer.resume(*(ready & self.consumer.assignment()))
        return replaying

    async def _process(self, batch: Batch) -> None:
        began = time.perf_counter()
        for tp, records in batch.items():
            if records:  # in hand: unfinished from its first record, however long it takes
                self._unfinished[tp] = records[0].offset
        try:
            landing, batch = await self._handle_with_retries(batch)
        except _Abandoned:
            # Not finished, so not committed: whoever the group gives the partitions reads it again.
            ABANDONED.labels(self.group_id).inc()
            log.warning("batch given up for a rebalance", extra=log_fields(group=self.group_id))
            self._refetch(batch)  # should the partitions stay here: the rejoin itself resumes from committed
            return
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        self._unfinished.update(offsets)
        self._landing.append((landing, offsets))
        self._landed()
        self._records_at = time.monotonic()
        if self._commit_due():
            await self.commit_finished()
        BATCH_SECONDS.labels(self.group_id).observe(time.perf_counter() - began)
        for tp in offsets:
            RECORDS.labels(self.group_id, tp.topic).inc(len(batch[tp]))

    def _quiet(self) -> bool:
        return time.monotonic() - self._records_at >= IDLE_AFTER_S

    def _pending(self) -> bool:
        return bool(self.finished or self._landing)

    def _commit_due(self) -> bool:
        return self._pending() and time.monotonic() - self._committed_at >= self.commit_interval_s

    def _landed(self) -> None:
        """Batches whose effects have landed, in order, are finished; a failed effect raises here."""
        while self._landing and (self._landing[0][0] is None or self._landing[0][0].done()):
            landing, offsets = self._landing.popleft()
            if landing is not None and (failure := landing.exception()) is not None:
                # Remembered, not only raised: a rebalance callback that meets it cannot stop the runner,
                # and no later batch of the partition may be committed over the lost one.
                self.fail(failure)
                raise failure
            self.finished.update(offsets)

    async def commit_finished(self, *, revoking: bool = False) -> None:
        """Wait for the effects still landing, commit every finished batch's offsets (held by this
        member), then tell `after_commit` (the state then agrees with the offsets: nothing is in flight).
        A commit the coordinator does not answer within the request timeout is given up (`revoking`) or
        sent again with the next."""
        if self._failure is not None:
            raise self._failure
        if landing := [effect for effect, _ in self._landing if effect is not None]:
            await asyncio.wait(landing)
        self._landed()
        assigned = self.consumer.assignment()
        offsets = {tp: o for tp, o in self.finished.items() if tp in assigned}
        self.finished.clear()
        if not offsets:
            return
        self._committed_at = time.monotonic()
        ahead = {tp: o for tp, o in offsets.items() if o >= self.replays.get(tp, o)}
        for tp in ahead:
            self.replays.pop(tp, None)
        progressed = set(offsets) - set(ahead)  # records read again below the committed offset: landed
        try:
            if ahead:
                # aiokafka retries a commit for as long as the coordinator is unknown (a node restarting):
                # a revocation waiting on it would hold the whole group. Its request may still land.
                await asyncio.wait_for(self.consumer.commit(ahead), self.request_timeout_s)
            progressed.update(ahead)
        except TimeoutError:
            COMMITS_TIMED_OUT.labels(self.group_id).inc()
            log.warning("commit timed out", extra=log_fields(group=self.group_id))
            if not revoking:
                # Sent again with the next commit (with nothing more to read, the lag would stay);
                # partitions being revoked are read again by their next owner, as after a refused commit.
                for tp, o in ahead.items():
                    self.finished[tp] = max(o, self.finished.get(tp, o))
        except CommitFailedError:
            # The group moved these partitions while the batch ran: their new owner reads the batch
            # again, and its effects are idempotent (deterministic ids), so this member just goes on.
            COMMITS_LOST.labels(self.group_id).inc()
            log.warning("commit refused after a rebalance", extra=log_fields(group=self.group_id))
        now = time.time()
        for tp in progressed:
            PROGRESS.labels(self.group_id, tp.topic, str(tp.partition)).set(now)
        if self.after_commit is not None:
            # Committed or refused, the effects have landed: the owner's state is at these offsets (a
            # snapshot taken at older ones would make its next owner apply these records twice).
            await self.after_commit(offsets)

    async def _handle_with_retries(self, batch: Batch) -> tuple[Landing, Batch]:
        """Handle the batch, retried (`_retried`): its effect, and the part of it handled (all of it, unless
        a record was set aside). With `set_aside`, a batch that fails other than by an outage is handled
        one record at a time instead (`_one_at_a_time`)."""
        if self.set_aside is None:
            return await self._retried(batch, self.handle, self.attempts), batch
        if sum(len(records) for records in batch.values()) > 1:
            try:
                landing = await self._retried(batch, self.handle, 1)
                self._set_aside_on = None
                return landing, batch
            except _Abandoned:
                raise
            except Exception as exc:
                if self._stopping.is_set():
                    raise
                log.warning(
                    "batch failed; handling its records one at a time",
                    extra=log_fields(group=self.group_id, error=type(exc).__name__),
                )
        return await self._one_at_a_time(batch)

    async def _one_at_a_time(self, batch: Batch) -> tuple[Landing, Batch]:
        """The batch's records in order, each as a batch of its own retried up to `attempts` times (an
        outage for as long as it lasts), up to the first that still fails alone: that one is set aside
        (`set_aside`, retried as a handler is) and the records after it are read again, as a batch of
        their own. So a bad record neither stops the runner nor holds back the others, and costs one
        record's retries before the runner polls and commits again, however many a batch holds. A stop or
        a rebalance waiting meanwhile ends it after the record in hand: the records handled are finished,
        the rest read again (a rebalance waits for the batch in hand, the whole group with it)."""
        landings: list[Landing] = []
        handled: Batch = {}
        for tp, records in batch.items():
            for i, record in enumerate(records):
                if self._stopping.is_set() or self.revoking.is_set():
                    handled[tp] = records[:i]
                    self._read_again(batch, handled)
                    return _together(landings), handled
                landing, set_aside = await self._one(tp, record)
                landings.append(landing)
                if set_aside:
                    handled[tp] = records[: i + 1]
                    self._read_again(batch, handled)
                    return _together(landings), handled
            handled[tp] = records
        return _together(landings), handled

    def _read_again(self, batch: Batch, handled: Batch) -> None:
        """The records of `batch` past those `handled` are fetched again: the next poll hands them over."""
        for tp, records in batch.items():
            done = len(handled.get(tp, []))
            if done < len(records) and tp in self.consumer.assignment():
                self.consumer.seek(tp, records[done].offset)

    async def _one(self, tp: TopicPartition, record: ConsumerRecord) -> tuple[Landing, bool]:
        """One record of a failed batch, handled alone or (True) set aside (see `_one_at_a_time`). One that
        fails on the error the record set aside just before it failed on (no record handled between), under
        another key, stops the runner instead: a condition no outage check knows (a dependency refusing
        everything in a new way) fails every record alike, whatever its key, and would have them all set
        aside, good ones too. Under the same key it is the same poison, set aside too: a key names what
        its records are about (an alert's subject, which each revision of the alert keeps), and the later
        records of a thing that cannot be handled fail as it did, often right behind it. Stopped, nothing
        of it is lost: it is read again at the next start (with the streak forgotten, so such a condition
        costs a record set aside per restart, not all of them). A record without a key is never the same
        poison: nothing says what it is about."""
        one = {tp: [record]}
        try:
            landing = await self._retried(one, self.handle, self.attempts)
            self._set_aside_on = None
            return landing, False
        except _Abandoned:
            raise
        except Exception as exc:
            if self._stopping.is_set():
                raise  # read again at the next start
            if self._set_aside_on is not None and _another_poison(self._set_aside_on, exc, record.key):
                log.error(
                    "record failed alone as the one set aside before it: stopping rather than set it aside",
                    extra=log_fields(
                        group=self.group_id,
                        at=f"{tp.topic}[{tp.partition}]@{record.offset}",
                        error=type(innermost(exc)).__name__,
                    ),
                )
                raise
            failure = exc
        set_aside = self.set_aside
        assert set_aside is not None
        landing = await self._retried(one, lambda _: set_aside(record, failure), self.attempts)
        self._set_aside_on = (type(innermost(failure)), record.key)
        return landing, True

    async def _retried(self, batch: Batch, handle: Handler, attempts: int) -> Landing:
        """`handle` the batch; a failure is retried with backoff: an outage (`retry_while`) until it is over
        or the runner is stopped, any other failure up to `attempts` in all, then raised (a failure that
        stops the runner is logged in `run`). A rebalance waiting meanwhile has the batch given up
        (`_Abandoned`), unless the runner keeps per-partition state (a failed attempt may have half-applied
        it)."""
        attempt = 0
        while True:
            if attempt and self._abandon():
                self.retrying = False
                raise _Abandoned
            attempt += 1
            try:
                landing = await self._handle_bounded(batch, handle)
            except Exception as exc:
                outage = self.retry_while is not None and self.retry_while(exc)
                if self._stopping.is_set() or not (outage or attempt < attempts):
                    raise
                # Not ready only through an outage: a failure of the batch's own says nothing of the
                # instance, which can serve (and its other partitions wait only seconds).
                self.retrying = outage
                delay = retry_delay(attempt, outage=outage)
                if not outage or _logged(attempt):
                    log.warning(
                        "batch failed; retrying",
                        extra=log_fields(
                            group=self.group_id,
                            attempt=attempt,
                            delay_s=delay,
                            outage=outage,
                            error=type(exc).__name__,
                        ),
                    )
                await self._pause(delay)  # at once if a rebalance waits (then given up)
                continue
            self.retrying = False
            return landing

    async def _handle_bounded(self, batch: Batch, handle: Handler) -> Landing:
        """One call of `handle`, told stuck past `handler_max_s` (see STUCK); it is not cut off: a
        handler cancelled midway could leave an owner's state half-applied, and it may still return."""
        if self.handler_max_s == math.inf:
            return await handle(batch)
        task = asyncio.current_task()
        stuck = asyncio.get_running_loop().call_later(self.handler_max_s, self._stuck, batch, task)
        self._handling_since = time.monotonic()
        try:
            return await handle(batch)
        finally:
            self._handling_since = None
            stuck.cancel()

    def _stuck(self, batch: Batch, task: asyncio.Task[Any] | None) -> None:
        STUCK.labels(self.group_id).inc()
        log.error(
            "consumer handler stuck",
            extra=log_fields(
                group=self.group_id,
                after_s=self.handler_max_s,
                at=[
                    f"{tp.topic}[{tp.partition}]@{records[0].offset}"
                    for tp, records in batch.items()
                    if records
                ],
                awaits=awaits(task.get_coro()) if task is not None else [],
            ),
        )

    def _abandon(self) -> bool:
        """Whether a failed batch is given up rather than retried: a rebalance waits for it, and a handler
        that is retried is idempotent; not a state owner's, whose failed attempt may be half-applied."""
        return self.revoking.is_set() and self.owner is None and self.rewind is None

    async def _pause(self, seconds: float, *, also: asyncio.Event | None = None) -> None:
        """Sleep between two attempts, cut short by a stop (the next attempt is the last), by a
        rebalance that may have the batch given up, or by `also`."""
        wake = [asyncio.ensure_future(self._stopping.wait())]
        if self.owner is None and self.rewind is None:
            wake.append(asyncio.ensure_future(self.revoking.wait()))
        if also is not None:
            wake.append(asyncio.ensure_future(also.wait()))
        try:
            await asyncio.wait(wake, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in wake:
                waiter.cancel()


def _another_poison(
    before: tuple[type[BaseException], bytes | None], exc: Exception, key: bytes | None
) -> bool:
    """Whether a record failing alone on `exc` fails as the record set aside just `before` it (its error,
    its key) did, under another key (see `ConsumerRunner._one`)."""
    error, its_key = before
    return type(innermost(exc)) is error and (key is None or key != its_key)


def _logged(failures: int) -> bool:
    """The 1st, 2nd, 4th, 8th, ... failure in a row: an outage retried every second logs a few lines."""
    return failures & (failures - 1) == 0


def _together(landings: list[Landing]) -> Landing:
    """The effects of several handler calls as one, landed once all have."""
    effects = [landing for landing in landings if landing is not None]
    return asyncio.gather(*effects) if effects else None


def retry_delay(attempt: int, *, outage: bool) -> float:
    """The pause after the `attempt`th failure of a batch: doubling from 0.4 s, to OUTAGE_RETRY_MAX_S for an
    outage, to RETRY_MAX_S for any other failure (a bug tried again `attempts` times in all)."""
    return min(0.2 * 2.0**attempt, OUTAGE_RETRY_MAX_S if outage else RETRY_MAX_S)


class _Abandoned(Exception):
    """A batch given up for a rebalance (see `ConsumerRunner._handle_with_retries`)."""
