"""Python's collector of reference cycles: kept off what every process holds from its start, and paced
for a process that holds a large state in memory.

A full collection scans every tracked object of the old generation in one pass, holding the event loop.
Every service starts with a few hundred thousand (modules, FastAPI, SQLAlchemy, pydantic), and scanning
them again and again under load would hold each request for tens of milliseconds. They live as long as
the process, so `freeze_startup` moves them out of the collector's sight (reference counting still frees
them).

In the scorer, the old generation is millions of small containers of state: a full collection holds the
loop for a large fraction of a second, and Python's own pacing would run one every few seconds under
load, because state churn keeps promoting objects. The state itself holds no cycles (reference counting
frees it), so the young generations are collected as Python does and the old one on a slow clock."""

from __future__ import annotations

import gc
import logging
import time

from prometheus_client import Histogram

from services.kit.logging import log_fields
from services.kit.periodic import PeriodicJob

log = logging.getLogger(__name__)
NEVER = 1_000_000_000  # gen-1 collections before an automatic full one

FULL_SECONDS = Histogram(
    "stopline_gc_full_collection_seconds",
    "time one full (old-generation) garbage collection held the process",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class FullCollections(PeriodicJob):
    name = "full garbage collection"

    async def once(self) -> int:
        began = time.perf_counter()
        found = gc.collect(2)
        took = time.perf_counter() - began
        FULL_SECONDS.observe(took)
        log.info("full garbage collection", extra=log_fields(seconds=round(took, 3), unreachable=found))
        return found


def freeze_startup() -> None:
    """Call once the process has started (imports done, clients made): what exists then is never scanned
    again by a full collection."""
    gc.collect()
    gc.freeze()


def defer_full_collections() -> None:
    """No automatic full collections (the young generations are still collected as usual)."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)


def pace_full_collections(interval_s: float) -> FullCollections | None:
    """Stop automatic full collections and return the job that runs one every `interval_s` (its first run
    is at once); 0 leaves Python's own pacing and returns None."""
    if interval_s <= 0:
        return None
    defer_full_collections()
    return FullCollections(interval_s=interval_s)
