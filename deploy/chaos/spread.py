"""How a run's measured times spread: the report's one way of summing them up."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any


def spread(measured: Iterable[float | None], target_s: float | None = None) -> dict[str, Any]:
    """How many, the median, 99th percentile and longest (seconds; none measured: empty), and how many
    were under `target_s` when there is one. Unmeasured times (None) are left out."""
    times = sorted(t for t in measured if t is not None)
    if not times:
        return {}
    found: dict[str, Any] = {
        "n": len(times),
        "p50": round(statistics.median(times), 2),
        "p99": round(times[min(len(times) - 1, int(0.99 * len(times)))], 2),
        "max": times[-1],
    }
    if target_s is not None:
        found["within_target"] = sum(t < target_s for t in times)
    return found
