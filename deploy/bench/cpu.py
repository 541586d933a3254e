"""The CPU a benchmark's measured span used: by the processes it names, by the benchmark's own process (the
load it offers and its reading of the results), and by the whole machine (the rest is Kafka, PostgreSQL and
whatever else runs). On two cores a latency target near the machine's capacity is met or missed on a few
percent of CPU, and machines of the same name differ by more than that: the figures say which it was."""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Snapshot:
    processes: dict[str, float | None]  # CPU seconds (user + system) used so far, by name; None: gone
    busy: float  # the machine's CPU seconds spent working so far, all cores
    steal: float  # ... taken by the host for others (a virtual machine's lost time)
    total: float  # ... and all of them, idle included


def snapshot(pids: dict[str, int]) -> Snapshot:
    """CPU used so far by the processes `pids` names, by this one and by the machine."""
    processes = {name: _used(pid) for name, pid in pids.items()}
    processes["load_generator"] = _used(None)
    m = psutil.cpu_times()
    # Linux counts a guest's time within `user` too, so the fields without `guest*` add up to the total.
    idle = m.idle + getattr(m, "iowait", 0.0)
    steal = getattr(m, "steal", 0.0)
    total = sum(getattr(m, f) for f in m._fields if not f.startswith("guest"))
    return Snapshot(processes=processes, busy=total - idle - steal, steal=steal, total=total)


def used(before: Snapshot, after: Snapshot, *, per: int) -> dict[str, object]:
    """What was used between two snapshots: milliseconds of CPU per unit of work (`per` of them done) by
    process and by the machine, and the shares of the machine's time that were busy and stolen."""
    span = after.total - before.total
    ms: dict[str, float | None] = {}
    for name, was in before.processes.items():
        now = after.processes.get(name)
        ms[name] = None if was is None or now is None else round(1000 * (now - was) / per, 2)
    return {
        "cpu_ms_per_item": {**ms, "machine": round(1000 * (after.busy - before.busy) / per, 2)},
        "machine_busy_share": round((after.busy - before.busy) / span, 3) if span > 0 else None,
        "machine_steal_share": round((after.steal - before.steal) / span, 3) if span > 0 else None,
    }


def _used(pid: int | None) -> float | None:
    """CPU seconds of process `pid` (this one: None) so far; None if it has ended (a child that died
    mid-run: the benchmark still reports the rest)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return None
    return float(times.user + times.system)
