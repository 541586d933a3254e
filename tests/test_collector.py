"""The paced cycle collector: automatic full collections stop, the job runs them, and 0 keeps Python's."""

from __future__ import annotations

import gc

from services.kit.collector import FULL_SECONDS, NEVER, pace_full_collections


def _observed() -> float:
    return sum(s.value for m in FULL_SECONDS.collect() for s in m.samples if s.name.endswith("_count"))


async def test_full_collections_run_on_the_job_clock_only():
    before = gc.get_threshold()
    try:
        job = pace_full_collections(3600)
        assert job is not None
        assert gc.get_threshold() == (before[0], before[1], NEVER)
        count = _observed()

        class Cycle:
            def __init__(self) -> None:
                self.me = self

        Cycle()  # garbage only a cycle collection frees
        assert await job.once() >= 1
        assert _observed() == count + 1
    finally:
        gc.set_threshold(*before)


def test_zero_keeps_pythons_own_pacing():
    before = gc.get_threshold()
    assert pace_full_collections(0) is None
    assert gc.get_threshold() == before
