"""The CPU a benchmark's span used, as the instruction benchmark reports it: a process's own work is counted
to it and to the machine, per unit of work."""

from __future__ import annotations

import subprocess
import sys
import time

from deploy.bench import cpu


def _spin(seconds: float) -> None:
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass


def test_the_work_of_each_process_is_counted_to_it_and_to_the_machine() -> None:
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", "import sys; print('waiting', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        # Its start-up (the interpreter's imports: tens of ms) is over before the span: it said it waits.
        assert child.stdout is not None and child.stdout.readline() == b"waiting\n"
        before = cpu.snapshot({"idle_child": child.pid})
        _spin(0.3)
        used = cpu.used(before, cpu.snapshot({"idle_child": child.pid}), per=3)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    ms = used["cpu_ms_per_item"]
    assert isinstance(ms, dict)
    # 0.3 s of this process's CPU over 3 items: 100 ms each (clock ticks of 10 ms either side).
    assert 90 <= ms["load_generator"] <= 130
    assert ms["idle_child"] < 10  # it waited on its input all along
    assert ms["machine"] >= ms["load_generator"] - 10
    busy = used["machine_busy_share"]
    assert isinstance(busy, float) and 0 < busy <= 1


def test_a_process_that_ended_meanwhile_is_reported_as_unknown() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603
    before = cpu.snapshot({"ended": child.pid})
    child.wait(10)
    ms = cpu.used(before, cpu.snapshot({"ended": child.pid}), per=1)["cpu_ms_per_item"]
    assert isinstance(ms, dict)
    assert ms["ended"] is None and isinstance(ms["load_generator"], float)
