"""A background job's failed round is retried at its next: an outage (the database down) is logged as one
warning line naming what was raised, each round, with no traceback; a bug keeps its traceback."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.kit.periodic import PeriodicJob


class _Once(PeriodicJob):
    name = "test job"

    def __init__(self, failing: object) -> None:
        super().__init__(interval_s=60)
        self.failing = failing

    async def once(self) -> None:
        self.stop()  # a single round
        if callable(self.failing):
            await self.failing()


async def _database_down() -> None:
    engine = create_async_engine("postgresql+asyncpg://stopline@127.0.0.1:1/stopline")  # nothing listens
    try:
        async with engine.connect() as conn:
            await conn.execute(text("select 1"))
    finally:
        await engine.dispose()


async def _bug() -> None:
    raise KeyError("a bug")


@pytest.mark.parametrize(
    ("failing", "level", "traceback", "error"),
    [(_database_down, logging.WARNING, False, "ConnectionRefusedError"), (_bug, logging.ERROR, True, None)],
)
async def test_an_outage_is_a_warning_line_and_a_bug_keeps_its_traceback(
    caplog: pytest.LogCaptureFixture, failing: object, level: int, traceback: bool, error: str | None
) -> None:
    with caplog.at_level(logging.DEBUG, logger="services.kit.periodic"):
        await _Once(failing).run()
    [record] = [r for r in caplog.records if r.name == "services.kit.periodic"]
    assert (record.levelno, record.exc_info is not None) == (level, traceback)
    assert record.getMessage().startswith("test job failed; retrying at the next tick")
    assert getattr(record, "fields", {}).get("error") == error
