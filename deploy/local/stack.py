"""Local dev stack (Kafka + PostgreSQL) for Stopline: `python -m deploy.local.stack up|down|status`.

All state lives under <repo>/.local/; `up` reuses running servers and is idempotent.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil

from deploy.local import kafka, postgres
from deploy.local.common import LOCAL_DIR, StackError, say
from streams import acls


@contextmanager
def _exclusive() -> Iterator[None]:
    """Serialise up/down so two concurrent invocations cannot start a second broker or postmaster."""
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    with (LOCAL_DIR / "stack.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _stopped_line(name: str, clean: bool | None) -> str:
    if clean is None:
        return f"{name}: not running"
    return f"{name}: stopped" if clean else f"{name}: stopped (had to SIGKILL)"


def up() -> None:
    t0 = time.monotonic()
    # Reject bad port and broker settings before anything is started, not halfway through.
    for read_setting in (kafka.broker_port, kafka.controller_port, kafka.reauth_ms, postgres.port):
        read_setting()
    # Kafka boots in the background while PostgreSQL is prepared, to shorten a cold start.
    brokers, kafka_started = kafka.ensure_started()
    if postgres.external():
        say("postgres: skipped (DATABASE_URL is set, using the external server)")
    else:
        pm, pg_started = postgres.ensure_up()
        verb = f"started in {time.monotonic() - t0:.1f}s" if pg_started else "already running"
        say(f"postgres: {verb} (pid {pm.pid}, {postgres.describe()})")
    kafka.wait_ready(brokers)
    asyncio.run(acls.ensure_service_principals(kafka.admin_connection()))
    verb = f"started in {time.monotonic() - t0:.1f}s" if kafka_started else "already running"
    say(f"kafka: {verb} (pid {_pids(brokers)}, {kafka.bootstrap_servers()}, SASL/SCRAM)")


def down() -> None:
    # Stop postgres even with DATABASE_URL set: a server left from an earlier `up` is still ours.
    say(_stopped_line("kafka", kafka.stop()))
    say(_stopped_line("postgres", postgres.stop()))


def status() -> int:
    brokers = kafka.running()
    up = len(brokers) == len(kafka.nodes())
    if brokers:
        state = "running" if up else f"{len(brokers)} of {len(kafka.nodes())} nodes running"
        say(f"kafka: {state} (pid {_pids(brokers)}, {kafka.bootstrap_servers()})")
    else:
        say("kafka: not running")
    pm = postgres.running()
    if pm is not None:
        say(f"postgres: running (pid {pm.pid}, {postgres.describe()})")
    elif postgres.external():
        say("postgres: external (DATABASE_URL is set)")
    else:
        say("postgres: not running")
    # LSB convention: 3 means "not running", so scripts can branch on it.
    return 0 if up and (pm or postgres.external()) else 3


def _pids(procs: list[psutil.Process]) -> str:
    return ", ".join(str(p.pid) for p in procs)


def _locked(action: Callable[[], None]) -> Callable[[], int]:
    def run() -> int:
        with _exclusive():
            action()
        return 0

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    # aiokafka logs every refused connection while the broker boots; that is expected noise here.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    logging.getLogger("aiokafka").propagate = False
    commands = {"up": _locked(up), "down": _locked(down), "status": status}
    try:
        return commands[args.command]()
    except StackError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
