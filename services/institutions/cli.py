"""Create institutions and their API keys:

    python -m services.institutions.cli create bank-a --kind bank --name "Bank A"
    python -m services.institutions.cli issue-key bank-a
    python -m services.institutions.cli revoke-key bank-a 0123456789ab   # the key id: slk_<key id>.…
    python -m services.institutions.cli delivery bank-a --webhook https://bank-a.example/hook [--[no-]kafka]
    python -m services.institutions.cli add-user bank-a li.na        # a person who signs in to the console
    python -m services.institutions.cli set-password bank-a li.na    # reads the new password on stdin
    python -m services.institutions.cli disable-user bank-a li.na    # ends the user's sessions too
    python -m services.institutions.cli delivery bank-a --rotate-secret [--overlap-days 7] [--force]
    python -m services.institutions.cli reseal [bank-a ...]   # after STOPLINE_SECRETS_KEY changed

The key (and a new user's password) is printed once on stdout and only its hash is stored. `delivery`
prints the webhook signing secret when it makes one. Each credential action is audited (actor
`institutions-cli`) and logged as JSON on stderr, naming the key id or user, never a key or password.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from services.institutions import credentials, delivery, users
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from services.kit.errors import DomainError
from services.kit.logging import configure_logging
from services.kit.settings import CommonSettings


async def _run(args: argparse.Namespace, common: CommonSettings) -> str:
    engine = make_engine(common.database_url, pool_size=1)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            if args.command == "delivery":
                secret = await delivery.configure(
                    session,
                    institution_id=args.id,
                    kafka=args.kafka,  # None (neither --kafka nor --no-kafka): as it is
                    webhook_url=args.webhook,
                    rotate_secret=args.rotate_secret,
                    overlap=timedelta(days=args.overlap_days),
                    force=args.force,
                )
                return secret or "(webhook secret unchanged)"
            if args.command == "reseal":
                count = await delivery.reseal(
                    session, sealer=delivery.secrets_sealer(common), institution_ids=args.ids
                )
                return f"(webhook secrets of {count} institutions sealed under the current key)"
            if args.command == "add-user":
                return await users.add_user(session, institution_id=args.id, username=args.username)
            if args.command == "set-password":
                password = sys.stdin.readline().rstrip("\n")
                await users.set_password(
                    session, institution_id=args.id, username=args.username, password=password
                )
                return "(password set; the user's open sessions ended)"
            if args.command == "disable-user":
                await users.disable_user(session, institution_id=args.id, username=args.username)
                return "(user disabled; their open sessions ended)"
            if args.command == "revoke-key":
                await credentials.revoke_key(session, institution_id=args.id, key_id=args.key_id)
                return "(key revoked)"
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
    revoke = sub.add_parser("revoke-key", help="revoke an API key (refused by the services within 30 s)")
    revoke.add_argument("id")
    revoke.add_argument("key_id", help="the 12 hex digits after `slk_` in the key")
    chan = sub.add_parser("delivery", help="set how instructions reach the institution")
    chan.add_argument("id")
    chan.add_argument("--webhook", help="URL that receives signed instruction webhooks")
    chan.add_argument(
        "--kafka",
        action=argparse.BooleanOptionalAction,
        help="publish to instructions.<id>, or (--no-kafka) not; without either, as it is",
    )
    chan.add_argument(
        "--rotate-secret", action="store_true", help="make a new webhook signing secret (keeps the webhook)"
    )
    chan.add_argument(
        "--force", action="store_true", help="rotate even while the previous secret still signs (drops it)"
    )
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
        ("set-password", "set a user's password, read from standard input; ends their open sessions"),
        ("disable-user", "stop a user signing in and end their open sessions"),
    ):
        user = sub.add_parser(name, help=what)
        user.add_argument("id")
        user.add_argument("username")
    args = parser.parse_args()
    common = CommonSettings()
    configure_logging(service="institutions-cli", level=common.log_level, pseudonym_key=common.pseudonym_key)
    try:  # `delivery` and `reseal` seal webhook secrets: never under the public development key
        common.check_production_secrets(kafka=False, sealing=args.command in ("delivery", "reseal"))
    except ValueError as exc:
        parser.exit(2, f"error: {exc} (run it where the service's secrets are: docs/deployment.md)\n")
    try:
        key = asyncio.run(_run(args, common))
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        raise SystemExit(2) from exc
    sys.stdout.write(key + "\n")


if __name__ == "__main__":
    main()
