"""Shared helpers for the local dev stack: paths, env ports, status output, process control."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where a stack keeps its state; the fault suite runs a stack of its own elsewhere.
LOCAL_DIR = Path(os.environ.get("STOPLINE_LOCAL_DIR") or REPO_ROOT / ".local")
CACHE_DIR = REPO_ROOT / ".local"  # what every stack of this checkout shares (the broker's classpath)
# The police unit of make run's officers: the console's sign-in form offers it, the story signs in with
# it, the banner's token carries it (cases are the unit's: a token of another unit sees none of them).
UNIT = "changji-anti-fraud-centre"


class StackError(RuntimeError):
    """A component could not be brought to the requested state; the message says where to look."""


def say(line: str) -> None:
    """Write one status line to stdout (the CLI's only output channel)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# Ports a test or the fault suite chooses for servers that bind later (a service binds its port seconds
# after its process starts, and again at each restart) come from below the kernel's ephemeral range: a
# port in that range, free when chosen, may meanwhile be the local end of any outgoing connection (a
# chaos instance failed its start on "address already in use" so). 28000-28099 is the live check's.
CHOSEN_PORTS = range(20_000, 28_000)
# Every port this process has handed out: free when chosen is not free when bound, and a caller choosing
# the ports of a whole fleet before starting it (the fault suite) got one port twice (a birthday draw: some
# 2% a run), and one of the two instances could not listen.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free on 127.0.0.1 now, outside the ephemeral range if the kernel leaves room for it, and
    never one this process handed out before."""
    low, _ = ephemeral_ports()
    choices = range(CHOSEN_PORTS.start, min(CHOSEN_PORTS.stop, low))
    for _ in range(100 if choices else 0):
        port = random.choice(choices)  # noqa: S311 - a port, not a secret
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    while True:  # no room below the range, or all taken: one the kernel picks
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range of local ports for outgoing connections (Linux's default if unknown)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999


def env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError(f"{name}={raw!r} is not a valid TCP port")
    return int(raw)


def gateway_port() -> int:
    """Where make run's SMS and push gateways' stand-in listens (deploy.local.gateway)."""
    return env_port("STOPLINE_GATEWAY_PORT", 8007)


def gateway_url() -> str:
    return f"http://127.0.0.1:{gateway_port()}"


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() else None


def live_process(pid: int | None) -> psutil.Process | None:
    """The process for pid if it exists and is not a zombie (an un-reaped zombie is as good as dead)."""
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc
    except psutil.Error:
        return None


def cmdline_of(proc: psutil.Process) -> list[str]:
    try:
        return list(proc.cmdline())
    except psutil.Error:
        return []


def _alive(procs: Sequence[psutil.Process]) -> list[psutil.Process]:
    return [p for p in procs if live_process(p.pid) is not None]


def terminate(proc: psutil.Process, sig: signal.Signals, timeout: float) -> bool:
    """Send sig, wait up to timeout, then SIGKILL the process and its descendants.

    Returns True if the process went away on the polite signal alone.
    """
    try:
        family = [proc, *proc.children(recursive=True)]
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        return True
    psutil.wait_procs([proc], timeout=timeout)
    clean = not _alive([proc])
    # Children normally exit with their parent; give them a moment before forcing it.
    psutil.wait_procs(_alive(family), timeout=5 if clean else 0)
    for survivor in _alive(family):
        try:
            survivor.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(_alive(family), timeout=5)
    if _alive(family):
        raise StackError(f"could not kill pid(s) {[p.pid for p in _alive(family)]}")
    return clean


def run_logged(cmd: Sequence[str], *, log: Path, timeout: float, what: str, **kwargs: Any) -> None:
    """Run a one-shot tool with its output appended to log, raising StackError on failure.

    Output goes to a file rather than a pipe: a daemon forked by the tool (pg_ctl) would otherwise
    inherit the pipe and make the call hang until the timeout.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                **kwargs,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"{what} timed out after {timeout:.0f}s; see {log}") from exc
        except OSError as exc:
            raise StackError(f"{what} could not run ({exc}); see {log}") from exc
    if result.returncode != 0:
        raise StackError(f"{what} failed with exit code {result.returncode}; see {log}")
