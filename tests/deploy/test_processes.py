"""Stopping the local stack's processes: every one is told before any is waited for."""

from __future__ import annotations

import time
from pathlib import Path

from deploy.local.processes import Child, stop_all


def test_children_stopped_together_are_each_told_before_any_is_waited_for(tmp_path: Path):
    """Each child, told to stop, waits for the other to be told too: stopped one after another, the first
    would wait in vain and exit 1 (the fault suite's dozen services spent tens of seconds so)."""
    a, b = tmp_path / "a", tmp_path / "b"
    children = [
        Child("peer-a", ["tests.deploy.child", "peer", str(a), str(b)]),
        Child("peer-b", ["tests.deploy.child", "peer", str(b), str(a)]),
    ]
    for child in children:
        child.start()
    try:
        deadline = time.monotonic() + 30
        while not (Path(f"{a}.ready").exists() and Path(f"{b}.ready").exists()):
            assert time.monotonic() < deadline, "the children did not start"
            time.sleep(0.05)
        stop_all(children)
        assert [c.proc.returncode for c in children if c.proc is not None] == [0, 0]
    finally:
        for child in children:
            if child.proc is not None and child.proc.poll() is None:
                child.proc.kill()
