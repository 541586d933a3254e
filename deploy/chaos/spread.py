"""How a run's measured times spread: the report's one way of summing them up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from deploy.percentile import percentile


def spread(measured: Iterable[float | None], target_s: float | None = None) -> dict[str, Any]:
    """How many, the median and 99th percentile (nearest rank) and the longest (seconds; none measured:
    empty), and how many were under `target_s` when there is one. Unmeasured times (None) are left out."""
    times = sorted(t for t in measured if t is not None)
    if not times:
        return {}
    p50, p99 = percentile(times, 50), percentile(times, 99)
    assert p50 is not None and p99 is not None  # some were measured
    found: dict[str, Any] = {
        "n": len(times),
        "p50": round(p50, 2),
        "p99": round(p99, 2),
        "max": times[-1],
    }
    if target_s is not None:
        found["within_target"] = sum(t < target_s for t in times)
    return found
