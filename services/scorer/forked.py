"""Encode a state snapshot in a forked child, as Redis writes its background saves: the child gets a
copy-on-write image of the state as it is at the fork (so it agrees with the offsets just committed),
encodes it on the other core and hands the bytes back through a pipe, while the parent's event loop goes
on scoring. Encoding in the loop blocked it for up to a second per partition under load.

POSIX only (os.fork); the child touches nothing of the parent's but the state it reads and the pipe."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Callable

CHUNK = 1 << 20


class ChildFailed(RuntimeError):
    """The child exited without handing back a whole snapshot."""


class ForkedEncoding:
    """A child process encoding one snapshot; `result()` awaits its bytes."""

    def __init__(self, build: Callable[[], bytes]) -> None:
        """Fork now: the child sees the state as it is at this call, whatever the loop does next."""
        read_fd, write_fd = os.pipe()
        # Out of the collector's sight while the child lives: a collection writes to every object it
        # scans, and each page written after the fork is copied (copy-on-write), which would stall the
        # parent's loop while the child lives. Collections then scan only what the parent made since.
        # `result` hands the objects back to the collector (no cycle leaks).
        gc.freeze()
        try:
            pid = os.fork()
        except BaseException:
            gc.unfreeze()
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:  # the child: never returns
            _child(build, read_fd, write_fd)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.pid = pid
        self._fd = read_fd
        self.exit_code: int | None = None

    async def result(self, timeout_s: float) -> bytes:
        """The encoded snapshot; a child that fails or outlives `timeout_s` is killed and reaped."""
        loop = asyncio.get_running_loop()
        chunks: list[bytes] = []
        finished: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                data = os.read(self._fd, CHUNK)
            except BlockingIOError:
                return
            if data:
                chunks.append(data)
            elif not finished.done():
                finished.set_result(None)

        loop.add_reader(self._fd, readable)
        try:
            await asyncio.wait_for(finished, timeout_s)
        except BaseException:
            os.kill(self.pid, signal.SIGKILL)
            raise
        finally:
            loop.remove_reader(self._fd)
            os.close(self._fd)
            try:
                await self._reap()
            finally:
                gc.unfreeze()  # the start-up freeze (services.kit.collector) with it
        if self.exit_code != 0:
            raise ChildFailed(f"snapshot child exited with {self.exit_code}")
        return b"".join(chunks)

    async def _reap(self) -> None:
        # The pipe closes as the child exits: waiting for its status takes milliseconds at most.
        for _ in range(500):
            pid, status = os.waitpid(self.pid, os.WNOHANG)  # noqa: ASYNC222 - WNOHANG never blocks
            if pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
                return
            await asyncio.sleep(0.01)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)  # noqa: ASYNC222 - a killed child is reaped at once


def _child(build: Callable[[], bytes], read_fd: int, write_fd: int) -> None:
    code = 1
    try:
        # The parent's signal handling writes to its loop's wakeup fd: the child must not, and a Ctrl-C
        # to the process group simply ends it (the parent then counts a failed snapshot).
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        gc.disable()  # a short-lived process: collecting would only copy the parent's pages
        os.nice(10)  # background work: the scorer and its neighbours on the machine come first
        os.close(read_fd)
        data = build()
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
        code = 0
    finally:
        os._exit(code)  # no atexit, no flushing of the parent's buffers, no cleanup of its clients
