"""The Kafka principals and what each may do: one principal per service, one per institution, and the
administrator. The brokers deny whatever is not granted here (StandardAuthorizer, no ACL → no access).

A service may read and write only the topics it uses and join only its own consumer groups. An
institution may read only its own instruction topic and write only its own answer and intake topics
(`streams.topics.institution_topics`): Kafka's ACLs are per topic, not per record, so a shared topic
could not keep one institution from writing records in another's name; a topic of its own can, and the
topic then says who sent each record. Coordination takes an answer's institution from its topic, and
ingest an event's from its intake topic; a body that names another institution is refused.

Grants are made per topic prefix (a `make run`, a test session, a benchmark), with the topics.
`python -m streams.acls institution <id> --kind bank` gives an institution its principal, topics and
grants.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from streams import topics
from streams.admin import admin_client, create_missing, ensure_topics
from streams.connection import KafkaConnection, development_password
from streams.credentials import (
    CLUSTER,
    CLUSTER_NAME,
    GROUP,
    LITERAL,
    PREFIXED,
    TOPIC,
    TRANSACTIONAL_ID,
    AclBinding,
    create_acls,
    upsert_users,
)
from streams.schemas.events import institution_id_problem

log = logging.getLogger(__name__)

ADMIN = "stopline-admin"  # super user: the stack and operators' tools (topics, principals, ACLs)
BROKER = "stopline-broker"  # the brokers' own principal, between brokers and towards the controllers
INGEST = "stopline-ingest"
SCORER = "stopline-scorer"
COORDINATION = "stopline-coordination"
NOTIFIER = "stopline-notifier"
BLOCKLIST = "stopline-blocklist"
BANKSIM = "stopline-banksim"  # the simulated banks' shortcut: they learn balances from the event topics
SERVICES = (INGEST, SCORER, COORDINATION, NOTIFIER, BLOCKLIST, BANKSIM)
PRODUCTION_SERVICES = tuple(p for p in SERVICES if p != BANKSIM)
RELAY_TRANSACTIONS = "relay-"  # the outbox relay's transactional ids start with it (under the prefix)
FEED_TRANSACTIONS = "blocklist-feed"  # the blocklist feed's one transactional id (under the prefix)


def relay_transactions(prefix: str) -> str:
    """How the transactional ids of the outbox relay begin."""
    return f"{prefix}{RELAY_TRANSACTIONS}"


def feed_transactions(prefix: str) -> str:
    """The blocklist feed's transactional id, shared by every instance (starting it fences the others)."""
    return f"{prefix}{FEED_TRANSACTIONS}"


class _Grants:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.bindings: list[AclBinding] = []

    def topic(self, principal: str, topic: topics.Topic, *operations: str) -> None:
        for op in operations:
            self.bindings.append(AclBinding(principal, TOPIC, topics.name(topic, self.prefix), LITERAL, op))

    def family(self, principal: str, family: topics.Topic, *operations: str) -> None:
        """Every institution's topic of a family (`instructions.`, `instruction-responses.`, `intake.`)."""
        for op in operations:
            self.bindings.append(AclBinding(principal, TOPIC, topics.name(family, self.prefix), PREFIXED, op))

    def transactions(self, principal: str, head: str) -> None:
        """The transactional ids that start with `head` (under the prefix): use (write) and look up."""
        for op in ("write", "describe"):
            self.bindings.append(
                AclBinding(principal, TRANSACTIONAL_ID, f"{self.prefix}{head}", PREFIXED, op)
            )

    def cluster(self, principal: str, operation: str) -> None:
        """The cluster itself (not under the prefix: one grant serves every prefix)."""
        self.bindings.append(AclBinding(principal, CLUSTER, CLUSTER_NAME, LITERAL, operation))

    def groups(self, principal: str, head: str) -> None:
        """The consumer groups whose names start with `head` (under the prefix)."""
        self.bindings.append(AclBinding(principal, GROUP, f"{self.prefix}{head}", PREFIXED, "read"))


def service_grants(prefix: str) -> list[AclBinding]:
    g = _Grants(prefix)
    events = list(topics.EVENT_TOPICS.values())
    for t in events:  # posted batches and events forwarded from the intake topics; read back when in doubt
        g.topic(INGEST, t, "write", "read")
    g.family(INGEST, topics.intake_for(""), "read")
    g.topic(INGEST, topics.DEAD_LETTER, "write")
    g.groups(INGEST, "ingest-")

    for t in events:  # and written: a record found on the wrong partition is moved to its own
        g.topic(SCORER, t, "read", "write")
    g.topic(SCORER, topics.TRANSFERS_BY_ACCOUNT, "read", "write")
    g.topic(SCORER, topics.SNAPSHOTS, "read", "write")
    g.topic(SCORER, topics.ALERTS, "write", "read")  # read back: a later payment updates the open alert
    g.topic(SCORER, topics.DEAD_LETTER, "write")
    g.topic(SCORER, topics.BLOCKLIST, "read")
    g.topic(SCORER, topics.BLOCKLIST_ACCOUNTS, "read")
    g.groups(SCORER, "scorer-")

    g.topic(COORDINATION, topics.ALERTS, "read")
    g.family(COORDINATION, topics.responses_from(""), "read")
    # Creates an institution's instruction topic on its first instruction if it was not provisioned;
    # reads it back when a publish is in doubt.
    g.family(COORDINATION, topics.instructions_for(""), "write", "create", "read")
    g.cluster(COORDINATION, "describe_configs")  # the replication those topics are made with
    g.topic(COORDINATION, topics.ESCALATIONS, "write", "read")  # read back when a publish is in doubt
    g.topic(COORDINATION, topics.FRAUD_RECEIVERS, "write", "read")
    g.groups(COORDINATION, "coordination-")
    g.transactions(COORDINATION, RELAY_TRANSACTIONS)  # the outbox relay's, and fencing another relay's

    g.topic(NOTIFIER, topics.ALERTS, "read")
    g.groups(NOTIFIER, "notifier-")

    g.topic(BLOCKLIST, topics.BLOCKLIST, "write")
    g.topic(BLOCKLIST, topics.BLOCKLIST_ACCOUNTS, "write")
    g.topic(BLOCKLIST, topics.FRAUD_RECEIVERS, "read")
    g.groups(BLOCKLIST, "blocklist-")
    g.transactions(BLOCKLIST, FEED_TRANSACTIONS)

    g.topic(BANKSIM, topics.EVENTS_BANK, "read")
    g.topic(BANKSIM, topics.EVENTS_PAYMENT, "read")
    g.groups(BANKSIM, "banksim-")
    return g.bindings


def institution_grants(institution: str, kind: str, prefix: str) -> list[AclBinding]:
    g = _Grants(prefix)
    instructions, responses, intake = topics.institution_topics(institution)
    g.topic(institution, instructions, "read")
    g.topic(institution, responses, "write")
    g.topic(institution, intake, "write")
    g.groups(institution, f"{institution}.")
    if kind == "telecom":  # the numbers to block
        g.topic(institution, topics.BLOCKLIST, "read")
    else:  # banks and payment providers: the mule accounts
        g.topic(institution, topics.BLOCKLIST_ACCOUNTS, "read")
    return g.bindings


async def ensure_service_principals(admin: KafkaConnection) -> None:
    """Create every service's principal with its development password (the local stack only)."""
    async with admin_client(admin) as client:
        await upsert_users(client, {p: development_password(p) for p in SERVICES})


def read_passwords(directory: Path, principals: tuple[str, ...] = PRODUCTION_SERVICES) -> dict[str, str]:
    """Each principal's password from the file of its name in `directory` (mounted secrets)."""
    passwords = {}
    for principal in principals:
        path = directory / principal
        try:
            password = path.read_text().strip()
        except OSError as exc:
            raise SystemExit(f"{principal}: no password file {path} ({exc.strerror})") from exc
        if not password:
            raise SystemExit(f"{principal}: the password file {path} is empty")
        passwords[principal] = password
    return passwords


async def provision_services(admin: KafkaConnection, *, prefix: str, passwords: dict[str, str]) -> list[str]:
    """A deployment's Kafka setup: the services' principals with these passwords (a given password
    replaces the one it had), then the prefix's topics and the services' grants; returns the topics
    created. Idempotent: a deployment runs it on every install and upgrade."""
    async with admin_client(admin) as client:
        await upsert_users(client, passwords)
    return await ensure_topics(admin, prefix)


async def provision_institution(
    admin: KafkaConnection, institution: str, *, kind: str, prefix: str, password: str | None = None
) -> None:
    """Give an institution its principal (the development password unless one is given), its three
    topics and its grants. Idempotent; a given password replaces the one it had."""
    if problem := institution_id_problem(institution):
        raise ValueError(f"institution id {institution!r}: {problem}")
    async with admin_client(admin) as client:
        await upsert_users(client, {institution: password or development_password(institution)})
        await create_missing(client, topics.institution_topics(institution), prefix, 30)
        await create_acls(client, institution_grants(institution, kind, prefix))


def main() -> None:
    from services.kit.settings import CommonSettings
    from streams.connection import connection

    parser = argparse.ArgumentParser(prog="python -m streams.acls", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("institution", help="give an institution its principal, topics and grants")
    one.add_argument("id")
    one.add_argument("--kind", required=True, choices=("bank", "payment", "telecom"))
    one.add_argument("--password-file", type=Path, help="its password (default: the development one)")
    many = sub.add_parser("institutions", help="the same for several, as id:kind (development passwords)")
    many.add_argument("pairs", nargs="+")
    services = sub.add_parser(
        "services", help="the services' principals (passwords from files), the topics and the grants"
    )
    services.add_argument(
        "--password-dir",
        type=Path,
        required=True,
        help="a file per principal, named as it (stopline-ingest, ...)",
    )
    args = parser.parse_args()
    common = CommonSettings()
    admin = connection(common, ADMIN)
    if args.command == "services":
        passwords = read_passwords(args.password_dir)
        created = asyncio.run(provision_services(admin, prefix=common.topic_prefix, passwords=passwords))
        log.info(
            "services provisioned", extra={"fields": {"principals": sorted(passwords), "created": created}}
        )
        return
    if args.command == "institution":
        password = args.password_file.read_text().strip() if args.password_file else None
        pairs = [(args.id, args.kind, password)]
    else:
        pairs = [(*pair.split(":", 1), None) for pair in args.pairs]

    async def provision_all() -> None:
        for institution, kind, password in pairs:
            await provision_institution(
                admin, institution, kind=kind, prefix=common.topic_prefix, password=password
            )

    asyncio.run(provision_all())


if __name__ == "__main__":
    main()
