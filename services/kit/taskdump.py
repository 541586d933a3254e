"""What each asyncio task of a process is waiting on, logged on SIGUSR1.

A service that stops working without an error (a consumer holding its partitions and reading nothing)
shows an idle event loop to a thread profiler: the answer is in which await each task is suspended at.
`kill -USR1 <pid>` logs one line per task with its chain of awaits, innermost last, as code locations
only (no values, so no personal data)."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from services.kit.logging import log_fields

log = logging.getLogger(__name__)
DEPTH = 40  # awaits followed per task


def install() -> None:
    """Call from within the running loop: SIGUSR1 then logs every task (see `dump`), and SIGUSR2 writes
    every thread's Python stack to stderr (faulthandler: code locations only), which needs no running loop:
    the supervisor asks for it before it kills a process that stopped answering its liveness probe."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, dump, loop)
    faulthandler.register(signal.SIGUSR2, all_threads=True)


def dump(loop: asyncio.AbstractEventLoop) -> int:
    """Log every task of the loop and where it waits; return how many."""
    tasks = asyncio.all_tasks(loop)
    for task in sorted(tasks, key=lambda t: t.get_name()):
        log.info("task waiting", extra=log_fields(task=task.get_name(), awaits=awaits(task.get_coro())))
    log.info("task dump done", extra=log_fields(tasks=len(tasks)))
    return len(tasks)


def awaits(coro: Any) -> list[str]:
    """The chain of awaits of a suspended coroutine, outermost first: `file:line function` for each
    coroutine or generator, then what the innermost waits on ("Future": awaiting another task or a
    gather shows as one too)."""
    chain: list[str] = []
    while coro is not None and len(chain) < DEPTH:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:  # a future's iterator (C asyncio names it FutureIter) or another awaitable
            chain.append("Future" if type(coro).__name__ == "FutureIter" else type(coro).__name__)
            break
        chain.append(location(frame))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return chain


def location(frame: FrameType) -> str:
    """`file:line function` of a frame, the file from its package root."""
    return f"{_short(frame.f_code.co_filename)}:{frame.f_lineno} {frame.f_code.co_qualname}"


def _short(filename: str) -> str:
    """The path from the package root (site-packages or the repository), not the machine's layout."""
    parts = Path(filename).parts
    for root in ("site-packages", "services", "streams", "models", "deploy", "tests", "asyncio"):
        if root in parts:
            index = len(parts) - 1 - parts[::-1].index(root)
            return "/".join(parts[index + (root == "site-packages") :])
    return Path(filename).name
