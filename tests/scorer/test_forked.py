"""Snapshots encoded in a forked child: the bytes come back whole, a failing or hanging child is reported
and reaped, what the collector was kept from while the child lived is collected after, and the frames of
several partitions are read back exactly."""

from __future__ import annotations

import gc
import os
import time
import weakref

import pytest

from services.scorer.forked import ChildFailed, ForkedEncoding
from services.scorer.snapshots import _framed, _unframed

STATE = {"n": 1}


async def test_the_child_sees_the_state_at_the_fork_and_hands_back_every_byte():
    STATE["n"] = 1
    child = ForkedEncoding(lambda: bytes([STATE["n"]]) * 3_000_000)  # far beyond a pipe's buffer
    STATE["n"] = 2  # the parent goes on; the child's copy does not change
    assert await child.result(timeout_s=10) == b"\x01" * 3_000_000
    assert child.exit_code == 0


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


async def test_the_collector_is_kept_off_the_parents_objects_while_the_child_lives_and_only_then():
    node = _Node()
    gone = weakref.ref(node)

    def slow() -> bytes:
        time.sleep(0.3)
        return b"done"

    child = ForkedEncoding(slow)
    del node  # garbage now, in a cycle
    gc.collect()
    assert gone() is not None and gc.get_freeze_count() > 0  # out of sight: its pages are not written
    assert await child.result(timeout_s=10) == b"done"
    gc.collect()
    assert gone() is None and gc.get_freeze_count() == 0  # handed back: nothing leaks


def test_a_failed_fork_leaves_nothing_frozen_and_no_descriptor_open(monkeypatch):
    # The session's scorer (tests/conftest.py) may have frozen the heap for a snapshot child of its own
    # (unfrozen when that child ends): start from nothing frozen. The body runs no loop, so nothing else
    # freezes meanwhile.
    gc.unfreeze()
    open_fds = len(os.listdir("/proc/self/fd"))

    def no_fork() -> int:
        raise OSError("no more processes")

    monkeypatch.setattr(os, "fork", no_fork)
    with pytest.raises(OSError, match="no more processes"):
        ForkedEncoding(lambda: b"")
    assert gc.get_freeze_count() == 0 and len(os.listdir("/proc/self/fd")) == open_fds


async def test_a_failing_child_is_reported():
    def boom() -> bytes:
        raise RuntimeError("encoding failed")

    with pytest.raises(ChildFailed):
        await ForkedEncoding(boom).result(timeout_s=10)


async def test_a_hanging_child_is_killed_and_reaped():
    def hang() -> bytes:
        time.sleep(30)
        return b""

    child = ForkedEncoding(hang)
    with pytest.raises(TimeoutError):
        await child.result(timeout_s=0.2)
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(child.pid, os.WNOHANG)  # noqa: ASYNC222 - WNOHANG never blocks


def test_frames_of_several_partitions_read_back_and_a_cut_one_is_refused():
    data = _framed(0, b"abc") + _framed(5, b"") + _framed(3, b"x" * 1000)
    assert list(_unframed(data)) == [(0, b"abc"), (5, b""), (3, b"x" * 1000)]
    with pytest.raises(ValueError, match="truncated"):
        list(_unframed(data[:-1]))
