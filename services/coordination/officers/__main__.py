"""End every console session of an officer (a lost laptop, an officer who left):

    python -m services.coordination.officers revoke-sessions officer-17

Audited (actor `officers-cli`, action `officer_sessions.revoked`) and logged as JSON on stderr. The
officer's token is not revoked (docs/security.md); to keep them out, disable them at the identity provider.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.coordination.officers import sessions
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from services.kit.logging import configure_logging
from services.kit.settings import CommonSettings


async def _revoke(database_url: str, subject: str) -> int:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            return await sessions.revoke(session, subject=subject)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.coordination.officers")
    sub = parser.add_subparsers(dest="command", required=True)
    revoke = sub.add_parser("revoke-sessions", help="end every console session of an officer at once")
    revoke.add_argument("subject", help="the officer's `sub`, as their token names them")
    args = parser.parse_args(argv)
    common = CommonSettings()
    configure_logging(service="officers-cli", level=common.log_level, pseudonym_key=common.pseudonym_key)
    ended = asyncio.run(_revoke(common.database_url, args.subject))
    sys.stdout.write(f"({ended} console sessions of {args.subject} ended)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
