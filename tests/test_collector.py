"""The paced cycle collector: automatic full collections stop, the job runs them, and 0 keeps Python's."""

from __future__ import annotations

import gc

from services.kit.collector import FULL_SECONDS, NEVER, freeze_startup, pace_full_collections


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


def test_what_lives_at_start_is_out_of_the_collectors_sight():
    class Held:
        pass

    held = [Held() for _ in range(1000)]
    try:
        freeze_startup()
        assert gc.get_freeze_count() >= len(held)
        tracked = {id(o) for o in gc.get_objects()}  # what a full collection would scan
        assert not any(id(h) in tracked for h in held)
        later = Held()
        assert id(later) in {id(o) for o in gc.get_objects()}
    finally:
        gc.unfreeze()
