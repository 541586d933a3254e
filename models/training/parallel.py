"""The report's independent fits (baselines, ablations, one model per left-out typology, …) on several
cores: each is a job of its own in a forked worker, which inherits the training data instead of being sent
it. Each worker fits with one thread, as the parent does (`models.training.train`)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from threadpoolctl import threadpool_limits

# The jobs of the running `run`: a forked worker finds them here (only the name travels to it).
_JOBS: dict[str, Callable[[], Any]] = {}


def _job(name: str) -> Any:
    with threadpool_limits(limits=1):
        return _JOBS[name]()


def run(jobs: Mapping[str, Callable[[], Any]], *, workers: int) -> dict[str, Any]:
    """Every job's result by name; jobs are started in the order given (longest first balances best)."""
    if workers <= 1 or len(jobs) <= 1:
        return {name: job() for name, job in jobs.items()}
    _JOBS.update(jobs)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {name: pool.submit(_job, name) for name in jobs}
            return {name: future.result() for name, future in futures.items()}
    finally:
        _JOBS.clear()
