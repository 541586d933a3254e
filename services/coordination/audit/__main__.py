"""Audit chain check: `python -m services.coordination.audit verify` (exit 1 and the bad row if broken)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from services.kit.audit import service
from services.kit.db import make_engine, make_sessionmaker
from services.kit.settings import CommonSettings


async def _verify(database_url: str) -> service.Verdict:
    engine = make_engine(database_url, pool_size=1, statement_timeout_ms=600_000)
    try:
        async with make_sessionmaker(engine)() as session:
            return await service.verify_whole(session)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.coordination.audit")
    parser.add_argument("command", choices=["verify"])
    parser.parse_args(argv)
    verdict = asyncio.run(_verify(CommonSettings().database_url))
    sys.stdout.write(orjson.dumps(verdict.__dict__).decode() + "\n")
    if not verdict.ok:
        sys.stderr.write(f"audit chain broken at row {verdict.first_bad_id}: {verdict.reason}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
