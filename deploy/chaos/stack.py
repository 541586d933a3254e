"""The fault suite's own stack: three Kafka nodes in network namespaces, a PostgreSQL, and two instances of
every service, all on ports chosen free at start, so it never meets `make run`, `make test` or another
helper's stack (its state lives in .local/chaos, wiped at each start).

The harness process imports deploy.local.* with this stack's environment (`environment()`), so
deploy.local.kafka and deploy.local.postgres act on the suite's nodes, not on the developer's stack.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import httpx

from deploy.local import fleet, kafka
from deploy.local.common import CACHE_DIR, free_port
from deploy.local.processes import PY, Child, step, stop_all, wait_healthy
from deploy.local.supervisor import GroupRelease, Supervisor

ROOT = CACHE_DIR / "chaos"
PREFIX = "chaos-"
CHAOS_PORT_OFFSET = 10
# The scheduled jobs' periods in the suite: short, so each job has many due items.
HOLD_PERIOD_S = 60  # a stop-payment lapses
LISTING_S = 30  # a listed number is taken off
ANSWER_TIMEOUT_S = 20  # an unanswered warning goes to the phone desk
SERVICES = tuple(s for s in fleet.SERVICES if s.name != "console")  # the console is a window, not a path


def database_url() -> str:
    return f"postgresql+asyncpg://stopline@127.0.0.1:{os.environ['STOPLINE_PG_PORT']}/stopline"


def environment(sms_url: str) -> dict[str, str]:
    """The suite's environment: its state dir, three nodes, its ports and the services' settings (the
    caller's DATABASE_URL is dropped: the suite's services use its own server)."""
    # The nodes take six ports from the caller's Kafka port + 10 (node i: base + 2 (i - 1), its controller
    # one above), so the suite stays in the port range its caller was given, clear of the caller's stack.
    kafka_base, pg_port = kafka.broker_port() + CHAOS_PORT_OFFSET, free_port()
    nodes = {
        "STOPLINE_KAFKA_BROKERS": "3",
        "STOPLINE_KAFKA_PORT": str(kafka_base),
        "STOPLINE_KAFKA_CONTROLLER_PORT": str(kafka_base + 1),
        # Production's re-authentication interval, not the local stack's few seconds: the faults are the
        # suite's own, and each client still has its connection closed by a broker every 5 minutes.
        "STOPLINE_KAFKA_REAUTH_MS": "300000",
    }
    with mock.patch.dict(os.environ, nodes):
        bootstrap = kafka.bootstrap_servers()  # the nodes' addresses in their namespaces
    return {
        **nodes,
        "STOPLINE_KAFKA_BOOTSTRAP": bootstrap,
        "STOPLINE_LOCAL_DIR": str(ROOT),
        "STOPLINE_PG_PORT": str(pg_port),
        "STOPLINE_TOPIC_PREFIX": PREFIX,
        "STOPLINE_SCORER_MODEL_WARMUP_HOURS": "0",  # minutes of traffic on a fresh state
        # A webhook bank that is down for a while gets its instructions when it is back, never dead.
        "STOPLINE_COORDINATION_WEBHOOK_BACKOFF_S": "0.5",
        "STOPLINE_COORDINATION_WEBHOOK_BACKOFF_MAX_S": "3",
        "STOPLINE_COORDINATION_WEBHOOK_MAX_ATTEMPTS": "100000",
        "STOPLINE_COORDINATION_WEBHOOK_TIMEOUT_S": "3",
        # An unanswered stop-payment is escalated 5 s after it was issued (a scheduled job on both
        # coordination instances: each due item must be escalated once).
        "STOPLINE_COORDINATION_ACK_DEADLINE_S": '{"stop_payment": 5}',
        "STOPLINE_COORDINATION_SCHEDULER_INTERVAL_S": "0.5",
        # Every scheduled job has due items, each of which must be handled once with both instances
        # running it: stop-payments lapse a minute after their issue, listed numbers 30 s after their
        # approval, and warnings nobody answers go to the phone desk after 20 s.
        "STOPLINE_COORDINATION_STOP_PAYMENT_PERIOD_S": str(HOLD_PERIOD_S),
        "STOPLINE_BLOCKLIST_ENTRY_TTL_S": str(LISTING_S),
        "STOPLINE_BLOCKLIST_EXPIRY_INTERVAL_S": "1",
        "STOPLINE_NOTIFIER_ANSWER_TIMEOUT_S": str(ANSWER_TIMEOUT_S),
        "STOPLINE_NOTIFIER_SMS_URL": f"{sms_url}/sms",
        "STOPLINE_NOTIFIER_PUSH_URL": f"{sms_url}/push",
        "STOPLINE_NOTIFIER_MAX_ATTEMPTS": "100000",
        "STOPLINE_NOTIFIER_BACKOFF_MAX_S": "3",
        "STOPLINE_LOG_LEVEL": "INFO",
    }


class Stack:
    """Start, supervise and stop the suite's stack; every process it starts, it stops."""

    def __init__(self) -> None:
        ports: dict[tuple[str, int], int] = {}
        self.port_of = lambda service, n: ports.setdefault((service, n), free_port())
        self.children = fleet.children(2, port_of=self.port_of, services=SERVICES)
        self.release = GroupRelease(kafka.admin_connection(), PREFIX)
        self.supervisor = Supervisor(
            self.children, backoff_s=0.5, backoff_max_s=5, stable_s=20, release=self.release
        )
        self._supervising = threading.Event()
        self._thread: threading.Thread | None = None

    def urls(self, service: str) -> list[str]:
        return [fleet.url_of(self.port_of, service, n) for n in (1, 2)]

    def up(self) -> None:
        self.down_stack()
        shutil.rmtree(ROOT, ignore_errors=True)
        ROOT.mkdir(parents=True)
        step(["deploy.local.stack", "up"], "starting the suite's Kafka nodes and PostgreSQL", timeout=600)
        step(["services.migrate", "upgrade"], "database migrations", timeout=180)
        step(["streams.admin"], "topics and the services' grants", timeout=120)

    def start_services(self) -> None:
        for child in self.children:
            child.start()
            self.supervisor.started(child)
        for child in self.children:
            wait_healthy(child, timeout=180)
        self._supervising.set()
        self._thread = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        while self._supervising.is_set():
            self.supervisor.tick()
            time.sleep(0.2)

    async def dump_tasks(self) -> list[str]:
        """Have every instance serving since its last start (its liveness answered the supervisor: its
        handler is installed; before it, SIGUSR1 would end it) log what its tasks wait on."""
        return await dump_tasks([c for c in self.children if self.supervisor.watches[c.name].answered])

    def stop_services(self) -> None:
        # Paused first: a tick under way (its probes may take seconds) must not start again a child
        # stopped below.
        self.supervisor.paused.update(c.name for c in self.children)
        self._supervising.clear()
        if self._thread is not None:
            self._thread.join(60)
        self.supervisor.close()
        self.release.close()
        stop_all(list(reversed(self.children)))

    def down_stack(self) -> None:
        if ROOT.exists():
            subprocess.run(  # noqa: S603 - our own module
                [PY, "-m", "deploy.local.stack", "down"], timeout=180, check=False, capture_output=True
            )

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)


# The suite's own event loop (its clients, the banks, the SMS gateway, and the probes that time the
# recoveries) runs ahead of the system under test: in production those are other machines. Sharing two
# cores with a dozen services and three brokers at equal priority, it timed its own lag: in a 300-fault
# run 41 of 101 slow service recoveries were its readiness probe not even connecting within 2 s.
OBSERVER_NICE = -10
T = TypeVar("T")


_normal_nice: int | None = None  # the thread's own niceness before `watch_closely` raised its priority


def watch_closely() -> int:
    """Run the calling thread at `OBSERVER_NICE` (Linux: a thread's own priority) if allowed (root);
    returns the niceness it runs at."""
    global _normal_nice
    tid = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, tid)
    try:
        os.setpriority(os.PRIO_PROCESS, tid, OBSERVER_NICE)
        _normal_nice = before
    except PermissionError:
        pass
    return os.getpriority(os.PRIO_PROCESS, tid)


def at_normal_priority(start: Callable[..., T], *args: Any) -> T:
    """Call `start` in this worker thread at the priority the suite was started with: a Kafka node or
    PostgreSQL it starts must not inherit the observer's (a thread inherits its creator's)."""
    if _normal_nice is not None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _normal_nice)
    return start(*args)


async def readiness(http: httpx.AsyncClient, url: str) -> str:
    """ "ok" if the instance is ready, else what is not: its failing checks, or that it did not answer.
    One client for all the probes: a client made per call costs ~50 ms of CPU (its TLS context)."""
    try:
        answer = await http.get(f"{url}/health/ready", timeout=2)
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    if answer.status_code == 200:
        return "ok"
    try:
        checks = answer.json().get("checks", {})
        return ", ".join(sorted(name for name, state in checks.items() if state != "ok")) or "degraded"
    except (ValueError, AttributeError):  # not JSON, or not an object of checks
        return f"status {answer.status_code}"


async def ready(http: httpx.AsyncClient, url: str) -> bool:
    return await readiness(http, url) == "ok"


def signal_child(child: Child, sig: signal.Signals) -> bool:
    if child.proc is None or child.proc.poll() is not None:
        return False
    try:
        child.proc.send_signal(sig)
    except ProcessLookupError:
        return False
    return True


def log_path(name: str) -> Path:
    return ROOT / "logs" / f"{name}.log"


async def dump_tasks(children: list[Child], timeout_s: float = 10.0) -> list[str]:
    """Have these running instances log what their tasks wait on (SIGUSR1, `services.kit.taskdump`), and
    wait until each has (its log says so), within `timeout_s`; return the instances that did."""
    logs = {c.name: Path(c.log.name) for c in children if c.log is not None}
    read = {name: path.stat().st_size for name, path in logs.items()}  # each log is read on from here
    waiting = [c.name for c in children if c.name in logs and signal_child(c, signal.SIGUSR1)]
    deadline = time.monotonic() + timeout_s
    done: list[str] = []
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            with logs[name].open("rb") as log:
                log.seek(read[name])
                tail = log.read()
            read[name] += tail.rfind(b"\n") + 1  # whole lines only: a line half written is read again
            if b'"task dump done"' in tail:
                done.append(name)
                waiting.remove(name)
        await asyncio.sleep(0.2)
    return done
