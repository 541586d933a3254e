"""The scorer process: two consumer runners (persons, accounts), one producer, /metrics and /health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn
from threadpoolctl import threadpool_limits

from models.artifact import ArtifactError
from services.kit import loopwatch, taskdump
from services.kit.collector import FullCollections, freeze_startup, pace_full_collections
from services.kit.http import (
    bind_port,
    consumer_liveness,
    create_app,
    group_health,
    listened,
    server_config,
    task_health,
)
from services.kit.logging import configure_logging, log_fields
from services.kit.settings import CommonSettings
from services.scorer.account_stage import AccountStage
from services.scorer.blocklist import Blocklist
from services.scorer.hooks import BlocklistKnowledge
from services.scorer.model_slot import ModelSlot
from services.scorer.person_stage import PersonStage
from services.scorer.settings import ScorerSettings
from services.scorer.snapshots import SnapshotStore
from streams import acls, topics
from streams.connection import connection
from streams.consumer import ConsumerRunner
from streams.producer import START_WITHIN_S, Producer

log = logging.getLogger(__name__)
VERSION = "scorer-2"
BLOCKLIST_WAIT_S = 30.0


class Scorer:
    """The stages named in the settings: both in one process, or one per process (each then has a core
    of its own; they meet only through the movements topic)."""

    def __init__(self, common: CommonSettings, settings: ScorerSettings) -> None:
        prefix = common.topic_prefix
        self.prefix = prefix
        kafka = connection(common, acls.SCORER)
        self.producer = Producer(kafka, client_id="stopline-scorer")
        self.snapshots = SnapshotStore(kafka, prefix=prefix, timeout_s=common.kafka_request_timeout_ms / 1000)
        self.runners: list[ConsumerRunner] = []
        self.persons: PersonStage | None = None
        self.accounts: AccountStage | None = None
        self.blocklist: Blocklist | None = None
        self.after_blocklist: ConsumerRunner | None = None  # the account stage's: joins once it is read
        if "persons" in settings.stages:
            self.persons = PersonStage(
                settings,
                self.producer,
                prefix=prefix,
                snapshots=self.snapshots,
                bounds=common.event_time_bounds(),
            )
            self.runners.append(
                _stage_runner(
                    common,
                    settings,
                    group=self.persons.group,
                    # The alerts too: keyed by person, a person's alerts come back to the partition of
                    # their events, so their later payments update the open alert (episodes).
                    topics=[topics.name(t, prefix) for t in (*topics.EVENT_TOPICS.values(), topics.ALERTS)],
                    stage=self.persons,
                )
            )
        if "accounts" in settings.stages:
            # Loaded before anything starts: a missing, altered or mismatched artifact stops the start-up.
            model = ModelSlot(
                settings.model_dir,
                version=settings.model,
                shadow=settings.shadow_model,
                watch_s=settings.model_watch_seconds,
                threshold=settings.model_alert_threshold,
            )
            # Hard rules: numbers and mule accounts on the published blocklist (read whole by every instance).
            self.blocklist = blocklist = Blocklist()
            self.accounts = AccountStage(
                settings,
                self.producer,
                prefix=prefix,
                version=VERSION,
                model=model,
                knowledge=BlocklistKnowledge(blocklist),
                snapshots=self.snapshots,
                bounds=common.event_time_bounds(),
            )
            self.after_blocklist = _stage_runner(
                common,
                settings,
                group=self.accounts.group,
                topics=[topics.name(topics.TRANSFERS_BY_ACCOUNT, prefix)],
                stage=self.accounts,
            )
            self.runners += [self.after_blocklist, blocklist.runner(common)]
        self.tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        # Set by `serve`: the collector's pacing is the process's, not every Scorer's (tests build many).
        self.collections: FullCollections | None = None

    async def start(self) -> None:
        await self.producer.start(within_s=START_WITHIN_S)
        try:
            await self._check_partitions()
        except BaseException:
            await self.producer.stop()  # nothing else is started yet
            raise
        await self.snapshots.start(within_s=START_WITHIN_S)
        self.tasks = [asyncio.create_task(self._run(r), name=r.group_id) for r in self.runners]
        if self.collections is not None:
            self.tasks.append(asyncio.create_task(self.collections.run(), name="gc"))

    async def _run(self, runner: ConsumerRunner) -> None:
        """A runner; the account stage's once the blocklist is read to the ends its topics had (a payment is
        scored once: against half a list it would never be checked again), or after BLOCKLIST_WAIT_S (then
        the model and the other rules decide, as for a number listed later). Meanwhile the group's other
        members hold the stage's partitions, and this instance is not ready."""
        if runner is self.after_blocklist and self.blocklist is not None:
            waits = {asyncio.ensure_future(e.wait()) for e in (self.blocklist.loaded, self._stopping)}
            await asyncio.wait(waits, timeout=BLOCKLIST_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
            if self._stopping.is_set():
                return
            if not self.blocklist.loaded.is_set():
                log.warning(
                    "scoring before the blocklist is read whole", extra=log_fields(waited_s=BLOCKLIST_WAIT_S)
                )
        await runner.run()

    async def _check_partitions(self) -> None:
        """A person's records meet because every producer and this scorer hash the same key to the same
        partition number of topics with the registry's counts (`streams.topics`); partitions added to one
        topic later would split them silently (records moved back and forth, snapshots refused)."""
        prefix = self.prefix
        expected = {
            topics.name(t, prefix): t.partitions
            for t in (
                *topics.EVENT_TOPICS.values(),
                topics.ALERTS,
                topics.TRANSFERS_BY_ACCOUNT,
                topics.SNAPSHOTS,
            )
        }
        found = await self.producer.partition_counts(list(expected), within_s=START_WITHIN_S)
        wrong = {name: n for name, n in found.items() if n != expected[name]}
        if wrong:
            said = ", ".join(
                f"{name} has {n or 'no'} partitions (registry: {expected[name]})"
                for name, n in sorted(wrong.items())
            )
            raise TopicLayoutError(f"partition counts differ from streams.topics: {said}")

    async def stop(self) -> None:
        self._stopping.set()
        for runner in self.runners:
            runner.stop()
        if self.collections is not None:
            self.collections.stop()
        await asyncio.wait(self.tasks, timeout=15)
        # Snapshots still landing (a revocation's past its budget, a periodic one) are not cut off by
        # closing the store under them, for a while: a missed one only lengthens the next owner's replay.
        settling = asyncio.gather(*(s.checkpoints.settle() for s in (self.persons, self.accounts) if s))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(settling, 15)
        await self.producer.stop()
        await self.snapshots.stop()

    async def health(self) -> dict[str, Any]:
        """Readiness: Kafka answers, and each stage holds its partitions."""
        return {
            "kafka": await self.producer.ping(),
            **self.liveness(),
            **group_health({r.group_id: r for r in self.runners}),
        }

    def liveness(self) -> dict[str, str]:
        """No task has ended, no stage's handler is stuck (asks no dependency)."""
        return task_health({t.get_name(): t for t in self.tasks}) | consumer_liveness(
            {r.group_id: r for r in self.runners}
        )


class TopicLayoutError(RuntimeError):
    """The topics' partition counts are not the registry's: a person's records would not stay together."""


def _stage_runner(
    common: CommonSettings,
    settings: ScorerSettings,
    *,
    group: str,
    topics: list[str],
    stage: PersonStage | AccountStage,
) -> ConsumerRunner:
    return ConsumerRunner(
        kafka=connection(common, acls.SCORER),
        group_id=group,
        topics=topics,
        handle=stage.handle,
        owner=stage,
        max_records=settings.max_batch,
        rewind=stage.checkpoints.rewind,
        after_commit=stage.checkpoints.after_commit,
        commit_interval_ms=settings.commit_interval_ms,
        on_idle=stage.checkpoints.idle,
    )


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the scorer decides how it stops. A port that another
    process bound at the same moment and listened on first ends it (status 3, `listened`)."""

    def __init__(self, config: uvicorn.Config, settings: ScorerSettings) -> None:
        super().__init__(config)
        self.settings = settings

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        assert sockets is not None
        await listened(super().startup(sockets), self, sockets[0], self.settings)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(common: CommonSettings, settings: ScorerSettings) -> None:
    sock = bind_port(settings)  # a port a serving process holds ends it before it loads its model
    try:
        scorer = Scorer(common, settings)
    except ArtifactError as exc:
        log.error("cannot start: the model artifact is unusable", extra=log_fields(reason=str(exc)))
        sys.stderr.write(f"scorer: cannot start: {exc}\n")
        raise SystemExit(2) from exc
    scorer.collections = pace_full_collections(settings.gc_full_interval_seconds)
    taskdump.install()  # SIGUSR1 logs what every task waits on
    try:
        await scorer.start()
    except TopicLayoutError as exc:
        log.error(
            "cannot start: the topics are not laid out as the registry says",
            extra=log_fields(reason=str(exc)),
        )
        sys.stderr.write(f"scorer: cannot start: {exc}\n")
        raise SystemExit(2) from exc
    app = create_app(title="Stopline scorer", health=scorer.health, liveness=scorer.liveness)
    freeze_startup()
    watch = loopwatch.start()  # started (the model loaded, the state restored): logs where a stalled loop is
    server = _QuietServer(server_config(app, settings, common), settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    web = asyncio.create_task(server.serve(sockets=[sock]))
    failed = asyncio.create_task(_first_failure(scorer.tasks))
    waiting = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait({failed, waiting}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    watch.stop()  # the loop stops turning for the shutdown by design
    await scorer.stop()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(web, 5)
    if failed in done and failed.result() is not None:
        log.error(
            "a consumer stopped on an error; exiting for a restart", extra=log_fields(runner=failed.result())
        )
        raise SystemExit(1)


async def _first_failure(tasks: list[asyncio.Task[None]]) -> str | None:
    """Wait until a runner ends on its own (an error): the scorer must not run half-alive."""
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    return next(iter(done)).get_name()


def main() -> None:
    common = CommonSettings()
    settings = ScorerSettings()
    configure_logging(service="scorer", level=common.log_level, pseudonym_key=common.pseudonym_key)
    common.check_production_secrets()
    threadpool_limits(limits=1)  # and in case OpenMP was loaded before OMP_NUM_THREADS was set
    asyncio.run(serve(common, settings))


if __name__ == "__main__":
    main()
