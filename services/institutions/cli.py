"""Create institutions and their API keys:

    python -m services.institutions.cli create bank-a --kind bank --name "Bank A"
    python -m services.institutions.cli issue-key bank-a

The key is printed once on stdout and only its hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.institutions import credentials
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from services.kit.errors import DomainError
from services.kit.settings import CommonSettings


async def _run(args: argparse.Namespace) -> str:
    engine = make_engine(CommonSettings().database_url, pool_size=1)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            if args.command == "create":
                await credentials.create_institution(
                    session, institution_id=args.id, kind=args.kind, name=args.name or args.id
                )
            return await credentials.issue_key(session, institution_id=args.id)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="manage institution API credentials")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create an institution and print its first API key")
    create.add_argument("id")
    create.add_argument("--kind", required=True, choices=["telecom", "bank", "payment"])
    create.add_argument("--name")
    issue = sub.add_parser("issue-key", help="print a new API key for an existing institution")
    issue.add_argument("id")
    args = parser.parse_args()
    try:
        key = asyncio.run(_run(args))
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        raise SystemExit(2) from exc
    sys.stdout.write(key + "\n")


if __name__ == "__main__":
    main()
