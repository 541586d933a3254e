"""Percentiles of measured values: the benchmarks' and the fault suite's one way of taking them."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank `q`th percentile (0 < q <= 100): the smallest value with at least q% of the values
    at or below it, so always one that was measured; None without values (JSON has no NaN)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds to a tenth; None stays None."""
    return None if seconds is None else round(seconds * 1000, 1)
