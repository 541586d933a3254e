"""A service's event loop held by synchronous work is seen while it lasts: where the loop is, and how long."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import REGISTRY

from services.kit import loopwatch
from tests.kafka_tools import eventually


def _stalls() -> float:
    return REGISTRY.get_sample_value("stopline_event_loop_stall_seconds_count") or 0.0


def _blocks_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # noqa: ASYNC251 - the synchronous work under test


async def test_a_blocked_loop_is_logged_where_it_is_and_counted_with_how_long(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.WARNING, logger=loopwatch.__name__)
    before = _stalls()
    watch = loopwatch.LoopWatch(stall_s=0.5, tick_s=0.05)
    watch.start()
    try:
        await asyncio.sleep(0.3)
        _blocks_the_loop(1.2)
        await eventually(
            lambda: any(r.getMessage() == "event loop turning again" for r in caplog.records), timeout_s=5
        )
    finally:
        watch.stop()
    # The watch's own records: the session's consumers in the background log too (a broker closing their
    # connection at a re-authentication, say).
    own = [r for r in caplog.records if r.name == loopwatch.__name__]
    said = [(r.getMessage(), r.fields) for r in own]  # type: ignore[attr-defined]
    at = [f["at"][-1] for m, f in said if m == "event loop stalled"]
    assert any(a.startswith("tests/kit/test_loopwatch.py:") and a.endswith("_blocks_the_loop") for a in at)
    assert max(f["stalled_s"] for m, f in said if m == "event loop turning again") >= 1.0
    assert _stalls() >= before + 1
