"""Create institutions and their API keys:

    python -m services.institutions.cli create bank-a --kind bank --name "Bank A"
    python -m services.institutions.cli issue-key bank-a
    python -m services.institutions.cli delivery bank-a --webhook https://bank-a.example/stopline [--no-kafka]
    python -m services.institutions.cli add-user bank-a li.na        # a person who signs in to the console
    python -m services.institutions.cli set-password bank-a li.na    # reads the new password on stdin
    python -m services.institutions.cli delivery bank-a --webhook URL --rotate-secret [--overlap-days 7]
    python -m services.institutions.cli reseal [bank-a ...]   # after STOPLINE_SECRETS_KEY changed

The key (and a new user's password) is printed once on stdout and only its hash is stored. `delivery`
prints the webhook signing secret when it makes one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from services.institutions import credentials, delivery, users
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from services.kit.errors import DomainError
from services.kit.settings import CommonSettings


async def _run(args: argparse.Namespace) -> str:
    engine = make_engine(CommonSettings().database_url, pool_size=1)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            if args.command == "delivery":
                secret = await delivery.configure(
                    session,
                    institution_id=args.id,
                    kafka=not args.no_kafka,
                    webhook_url=args.webhook,
                    rotate_secret=args.rotate_secret,
                    overlap=timedelta(days=args.overlap_days),
                )
                return secret or "(webhook secret unchanged)"
            if args.command == "reseal":
                count = await delivery.reseal(
                    session, sealer=delivery.secrets_sealer(), institution_ids=args.ids
                )
                return f"(webhook secrets of {count} institutions sealed under the current key)"
            if args.command == "add-user":
                return await users.add_user(session, institution_id=args.id, username=args.username)
            if args.command == "set-password":
                password = sys.stdin.readline().rstrip("\n")
                await users.set_password(
                    session, institution_id=args.id, username=args.username, password=password
                )
                return "(password set)"
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
    chan = sub.add_parser("delivery", help="set how instructions reach the institution")
    chan.add_argument("id")
    chan.add_argument("--webhook", help="URL that receives signed instruction webhooks")
    chan.add_argument("--no-kafka", action="store_true", help="do not publish to instructions.<id>")
    chan.add_argument("--rotate-secret", action="store_true", help="make a new webhook signing secret")
    chan.add_argument(
        "--overlap-days",
        type=float,
        default=delivery.ROTATION_OVERLAP.days,
        help="after a rotation, how long the previous secret also signs",
    )
    reseal = sub.add_parser(
        "reseal", help="seal webhook secrets again under STOPLINE_SECRETS_KEY (after a change of key)"
    )
    reseal.add_argument("ids", nargs="*", help="only these institutions (default: every one)")
    for name, what in (
        ("add-user", "add a person who answers instructions in the console; prints the password"),
        ("set-password", "set a user's password, read from standard input"),
    ):
        user = sub.add_parser(name, help=what)
        user.add_argument("id")
        user.add_argument("username")
    args = parser.parse_args()
    try:
        key = asyncio.run(_run(args))
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        raise SystemExit(2) from exc
    sys.stdout.write(key + "\n")


if __name__ == "__main__":
    main()
