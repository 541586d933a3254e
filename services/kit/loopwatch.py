"""Event-loop stalls, seen while they last: a thread that notices when the service's loop stops turning.

A loop held by synchronous work answers no probe, heartbeat or request meanwhile, and a liveness kill shows
only where the loop was at its end. The watch thread logs where the loop's thread is once the loop has not
turned for `STALL_S` (code locations only: no values, so no personal data), and how long the stall lasted
when it turns again (`stopline_event_loop_stall_seconds`). Started once the service has started: its
start-up (imports, the model, restoring state) holds the loop by design.

A process stopped as a whole (SIGSTOP), starved of CPU, or held by native code that keeps the GIL stops this
thread too, so its own sleep overruns: that time is counted as a pause
(`stopline_process_pause_seconds`), not as the loop's stall, and the loop is judged again from then on."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from types import FrameType

from prometheus_client import Histogram

from services.kit.logging import log_fields
from services.kit.taskdump import DEPTH, location

log = logging.getLogger(__name__)

STALL_S = 1.0  # a probe answers within 2 s and a consumer's heartbeat every 3 s: half the tighter of them
TICK_S = 0.1
BUCKETS = (1, 2, 3, 5, 10, 30, 60)
STALLS = Histogram(
    "stopline_event_loop_stall_seconds",
    f"spans of at least {STALL_S:.0f} s in which the event loop ran no callback (synchronous work held it)",
    buckets=BUCKETS,
)
PAUSES = Histogram(
    "stopline_process_pause_seconds",
    f"spans of at least {STALL_S:.0f} s in which the process ran no thread at all (stopped, starved of CPU,"
    " or native code holding the GIL)",
    buckets=BUCKETS,
)


class LoopWatch:
    """`start()` from within the running loop; `stop()` ends the thread."""

    def __init__(self, *, stall_s: float = STALL_S, tick_s: float = TICK_S) -> None:
        self.stall_s = stall_s
        self.tick_s = tick_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._beat = time.monotonic()  # written by the loop's thread, read by the watch (a float: atomic)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="loop-watch", daemon=True)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._loop.call_soon(self._turned)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def _turned(self) -> None:
        self._beat = time.monotonic()
        if not self._stopping.is_set():
            assert self._loop is not None
            self._loop.call_later(self.tick_s, self._turned)

    def _watch(self) -> None:
        woke = time.monotonic()
        judged_from = woke  # a stall counts from the later of the loop's last turn and this
        stalled_at: float | None = None
        while not self._stopping.wait(self.tick_s):
            now = time.monotonic()
            overrun = now - woke - self.tick_s
            woke = now
            if overrun > self.tick_s:  # this thread did not run either: the loop is judged from now on
                judged_from = now
                if overrun >= self.stall_s:
                    PAUSES.observe(overrun)
            since = max(self._beat, judged_from)
            if stalled_at is None and now - since >= self.stall_s:
                stalled_at = since
                log.warning(
                    "event loop stalled",
                    extra=log_fields(stalled_s=round(now - since, 2), at=self._where()),
                )
            elif stalled_at is not None and self._beat > stalled_at:
                lasted = self._beat - stalled_at
                STALLS.observe(lasted)
                log.warning("event loop turning again", extra=log_fields(stalled_s=round(lasted, 2)))
                stalled_at = None

    def _where(self) -> list[str]:
        """The loop thread's stack, outermost first, as `file:line function`."""
        frame: FrameType | None = sys._current_frames().get(self._loop_thread)
        stack: list[str] = []
        while frame is not None and len(stack) < DEPTH:
            stack.append(location(frame))
            frame = frame.f_back
        return stack[::-1]


def start() -> LoopWatch:
    """Watch the running loop for the life of the process."""
    watch = LoopWatch()
    watch.start()
    return watch
