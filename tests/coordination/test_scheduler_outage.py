"""A scheduled job that meets a database outage is counted and logged in one line (no traceback on every
tick while the outage lasts); the next tick retries it."""

from __future__ import annotations

import logging
from typing import cast

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from services.coordination.deadlines.scheduler import JOBS, Scheduler
from services.coordination.instructions.service import Context


def _errors(job: str) -> float:
    return REGISTRY.get_sample_value("stopline_scheduler_errors_total", {"task": job}) or 0.0


async def test_a_database_outage_is_one_warning_line_a_job_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_async_engine("postgresql+asyncpg://stopline@127.0.0.1:1/stopline")  # nothing listens
    before = {job: _errors(job) for job in JOBS}
    try:
        # The jobs fail on their first query, before they use the context.
        scheduler = Scheduler(async_sessionmaker(engine), cast(Context, None), interval_s=1)
        with caplog.at_level(logging.DEBUG, logger="services.coordination.deadlines.scheduler"):
            done = await scheduler.tick()
    finally:
        await engine.dispose()
    assert done == dict.fromkeys(JOBS, 0)
    assert {job: _errors(job) - before[job] for job in JOBS} == dict.fromkeys(JOBS, 1.0)
    records = [r for r in caplog.records if r.name == "services.coordination.deadlines.scheduler"]
    assert [(r.levelno, r.exc_info, r.fields["job"]) for r in records] == [  # type: ignore[attr-defined]
        (logging.WARNING, None, job) for job in JOBS
    ]
