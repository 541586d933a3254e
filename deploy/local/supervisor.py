"""The local supervisor: keeps every child of `make run` (and of the fault suite) running, never giving up.

A child that exits is started again after a backoff that doubles with each quick failure (1 s up to 30 s)
and falls back to nothing once the child has run a stable minute; a child that stops answering its
liveness probe (`/health/live`) three times in a row is killed and started the same way; until its first
answer a child is starting (loading its model, restoring its state) and is given `startup_s` for it, as a
Kubernetes startup probe would. Every restart is
logged with its cause and counted in `stopline_supervisor_restarts_total{child, cause}`.

A child that ended is taken out of its consumer groups (`release`, e.g. `GroupRelease`): its consumers
are static members, whose partitions a group otherwise keeps for the session timeout in case the process
comes back; the supervisor knows it is gone, so the other instances take them over at once. The release
names the dead process's own memberships (as described before it was seen to end), not the new
process's, so the child starts again meanwhile.

Probes run in threads of their own and a tick only collects their answers: a hung child's probe takes its
whole timeout, and the ticks meanwhile still start again the children that ended.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Counter, Gauge

from deploy.local.common import say
from deploy.local.processes import Child
from streams import membership
from streams.connection import KafkaConnection

log = logging.getLogger(__name__)

# A child killed for not answering its liveness probe is first asked for its threads' Python stacks
# (faulthandler on SIGUSR2: services.kit.taskdump), written to its log even when its event loop does not
# run; this long is left for the dump.
STACKS_WAIT_S = 0.3
RESTARTS = Counter("stopline_supervisor_restarts_total", "children started again", ["child", "cause"])
UP = Gauge("stopline_supervisor_child_up", "1 while the child runs", ["child"])
RELEASES = Counter(
    "stopline_supervisor_group_releases_total",
    "ended children taken out of their consumer groups: removed (from one or more), none (in none),"
    " unknown (groups not described before it ended), failed",
    ["child", "outcome"],
)


class GroupRelease:
    """`release` of children whose consumers are static members (named by their `STOPLINE_INSTANCE`):
    takes an ended child out of the consumer groups (named with `prefix`) it shares with another
    instance (`streams.membership.Expeller`). One admin client, kept on a loop of its own, serves every
    release and describes the groups every `DESCRIBE_EVERY_S` meanwhile (a member that joined since is
    not known by its member id): a client made per release would find the cluster again each time,
    seconds when a node is down or cut off. A group whose coordinator does not answer (its node faulted)
    is asked again until `timeout_s`: past the session timeout, and the time a coordinator takes to move,
    the group has dropped the member by itself."""

    DESCRIBE_EVERY_S = 3.0

    def __init__(self, kafka: KafkaConnection, prefix: str, *, timeout_s: float = 12.0) -> None:
        self.kafka = kafka
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="group-release", daemon=True)
        self._thread.start()
        self._expeller: membership.Expeller | None = None
        self._connecting = asyncio.Lock()
        self._keeping = asyncio.run_coroutine_threadsafe(self._keep(), self._loop)
        self._lock = threading.Lock()
        self._in_flight: set[Future[membership.Expelled]] = set()

    def __call__(self, child: Child, ended_at: float) -> None:
        """Take `child`, seen to have ended at `ended_at` (`time.monotonic`), out of its groups."""
        instance = child.env.get("STOPLINE_INSTANCE")
        if not instance:
            return
        began = time.monotonic()
        bounded = asyncio.wait_for(self._expel(instance, ended_at, began + self.timeout_s), self.timeout_s)
        releasing = asyncio.run_coroutine_threadsafe(bounded, self._loop)
        with self._lock:
            self._in_flight.add(releasing)
        try:
            found = releasing.result(self.timeout_s + 5)
        except Exception as exc:  # noqa: BLE001 - cancelled at close, or failed: the groups wait for the timeout
            RELEASES.labels(child.name, "failed").inc()
            say(f"{child.name} not taken out of its consumer groups ({type(exc).__name__})")
            return
        finally:
            with self._lock:
                self._in_flight.discard(releasing)
        if found.unknown:
            outcome = "unknown"
        else:
            outcome = "failed" if found.failed else ("removed" if found.removed else "none")
        RELEASES.labels(child.name, outcome).inc()
        took = time.monotonic() - began
        groups = ", ".join(found.removed) or "none"
        failed = f" (not reached: {', '.join(found.failed)})" if found.failed else ""
        say(f"{child.name} taken out of its consumer groups in {took:.1f}s: {groups}{failed}")

    def knows(self, group: str) -> bool:
        """Whether `group` has been described: a release names only members described before the end."""
        return self._expeller is not None and group in self._expeller.described

    async def _expel(self, instance: str, ended_at: float, until: float) -> membership.Expelled:
        expeller = await self._connected()
        # A last attempt may take three requests (the coordinator known, one found anew, the removal).
        deadline_s = until - 3 * expeller.timeout_s - time.monotonic()
        return await expeller.expel(instance, ended_at=ended_at, deadline_s=deadline_s)

    async def _connected(self) -> membership.Expeller:
        async with self._connecting:
            if self._expeller is None:
                admin = AIOKafkaAdminClient(**self.kafka.options(), request_timeout_ms=3000)
                try:
                    await asyncio.wait_for(admin.start(), self.timeout_s / 2)
                except BaseException:
                    await admin.close()
                    raise
                self._expeller = membership.Expeller(admin, self.prefix)
            return self._expeller

    async def _keep(self) -> None:
        while True:
            try:
                await (await self._connected()).describe()
            except Exception:  # noqa: BLE001 - Kafka not up yet, or down: tried again
                log.debug("group release not connected yet")
            await asyncio.sleep(self.DESCRIBE_EVERY_S)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._keeping.cancel()
        with self._lock:
            for releasing in self._in_flight:  # its caller's thread returns at once
                releasing.cancel()

        async def closed() -> None:
            if self._expeller is not None:
                await self._expeller.admin.close()

        try:
            asyncio.run_coroutine_threadsafe(closed(), self._loop).result(5)
        except Exception:  # noqa: BLE001 - closing at exit: nothing to do about it
            log.debug("group release's admin client not closed cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def exit_cause(returncode: int) -> str:
    """`killed by SIGKILL`, `exit code 1`, ... from a Popen return code."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class _Watch:
    child: Child
    started_at: float = 0.0
    failures: int = 0  # quick failures in a row (reset after a stable period)
    restart_at: float | None = None  # when a child that ended is due to start again
    probe_failures: int = 0
    probe_failed: str = ""  # why the last probe failed
    next_probe_at: float = 0.0
    answered: bool = False  # live at least once since its start
    probing: Future[str | None] | None = None  # a probe of the child's current run, in flight or answered
    causes: list[str] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        children: Sequence[Child],
        *,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        stable_s: float = 60.0,
        probe_every_s: float = 5.0,
        probe_failures: int = 3,
        startup_s: float = 120.0,
        probe_timeout_s: float = 2.0,
        release: Callable[[Child, float], None] | None = None,
    ) -> None:
        self.watches = {c.name: _Watch(c) for c in children}
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.stable_s = stable_s
        self.probe_every_s = probe_every_s
        self.probe_limit = probe_failures
        self.startup_s = startup_s
        self.release = release
        self.paused: set[str] = set()  # children deliberately left down (the fault suite's choice)
        self._probes = ThreadPoolExecutor(max_workers=max(len(children), 1), thread_name_prefix="probe")
        # Apart from the probes: a release may take seconds while a Kafka node is down.
        self._releases = ThreadPoolExecutor(max_workers=max(len(children), 1), thread_name_prefix="release")
        # One client for every probe (it is thread-safe): a client made per probe costs ~50 ms of CPU.
        self._http = httpx.Client(timeout=probe_timeout_s)

    def started(self, child: Child) -> None:
        """Note that a child was started (by whoever started it)."""
        watch = self.watches[child.name]
        watch.started_at = time.monotonic()
        watch.restart_at = None
        watch.probe_failures = 0
        watch.answered = False
        watch.probing = None  # a probe of the run before is not about this one
        watch.next_probe_at = watch.started_at + self.probe_every_s
        UP.labels(child.name).set(1)

    def tick(self) -> None:
        """Restart what is due, schedule what ended, probe what runs. Call it often (e.g. every 0.5 s)."""
        now = time.monotonic()
        for name, watch in self.watches.items():
            child = watch.child
            if child.proc is None or name in self.paused:
                continue
            returncode = child.proc.poll()
            if returncode is None:
                if watch.probing is not None and watch.probing.done():
                    self._judge(watch, watch.probing.result(), now)
                    watch.probing = None
                elif watch.probing is None and child.url is not None and now >= watch.next_probe_at:
                    watch.probing = self._probes.submit(self._live, child.url)
                continue
            if watch.restart_at is None:
                self._ended(watch, exit_cause(returncode), now)
            elif now >= watch.restart_at:
                child.start()
                self.started(child)

    def _ended(self, watch: _Watch, cause: str, now: float) -> None:
        UP.labels(watch.child.name).set(0)
        lived = now - watch.started_at
        watch.failures = 0 if lived >= self.stable_s else watch.failures + 1
        delay = (
            0.0
            if watch.failures == 0
            else min(self.backoff_s * 2 ** (watch.failures - 1), self.backoff_max_s)
        )
        watch.restart_at = now + delay
        if self.release is not None:
            self._releases.submit(self._release, watch.child, now)
        watch.causes.append(cause)
        RESTARTS.labels(watch.child.name, cause).inc()
        say(
            f"{watch.child.name} ended ({cause}) after {lived:.1f}s; starting it again in {delay:.1f}s"
            f" (restart {len(watch.causes)})"
        )

    def _judge(self, watch: _Watch, failed: str | None, now: float) -> None:
        watch.next_probe_at = now + self.probe_every_s
        watch.answered = watch.answered or failed is None
        watch.probe_failures = 0 if failed is None else watch.probe_failures + 1
        watch.probe_failed = failed or ""
        if watch.answered:
            dead = watch.probe_failures >= self.probe_limit
            why = f"failed its liveness probe {watch.probe_failures} times (the last: {watch.probe_failed})"
        else:
            dead = now - watch.started_at >= self.startup_s
            why = f"not live {self.startup_s:.0f}s after its start"
        if dead and watch.child.proc is not None:
            say(f"{watch.child.name} {why}; killing it (its threads' stacks first, in its log)")
            watch.child.proc.send_signal(signal.SIGUSR2)
            time.sleep(STACKS_WAIT_S)
            watch.child.proc.kill()
            watch.child.proc.wait(10)
            self._ended(watch, "not live", now)

    def _release(self, child: Child, ended_at: float) -> None:
        assert self.release is not None
        try:
            self.release(child, ended_at)
        except Exception as exc:  # noqa: BLE001 - the groups then wait for the session timeout
            say(f"{child.name}'s release from its groups failed ({exc!r})")

    def _live(self, url: str) -> str | None:
        """None if the child is live, else why not: its answer (the checks that failed) or the error."""
        try:
            answer = self._http.get(f"{url}/health/live")
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return None if answer.status_code == 200 else f"HTTP {answer.status_code} {answer.text[:200]}"

    def close(self) -> None:
        """Let go of the probes: one in flight to a hung child is not waited for."""
        self._probes.shutdown(wait=False, cancel_futures=True)
        self._releases.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def restarts(self, name: str) -> list[str]:
        """The causes of the child's restarts so far."""
        return list(self.watches[name].causes)
