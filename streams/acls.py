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
grants; `python -m streams.acls revoke <id>` takes them away again (the topics stay: their records are
evidence). docs/kafka-security.md says when to revoke and when to replace a password instead.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from aiokafka.errors import KafkaError

from streams import topics
from streams.admin import admin_client, create_missing, ensure_topics, reauth_ms
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
    delete_acls_of,
    delete_user,
    upsert_users,
)
from streams.schemas.events import institution_id_problem

log = logging.getLogger("streams.acls")  # named, not __name__: the audit's logger also under `python -m`

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
    g.topic(COORDINATION, topics.DEAD_LETTER, "write")  # alerts it cannot store
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
    g.topic(NOTIFIER, topics.DEAD_LETTER, "write")  # alerts it cannot handle
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
        if not await reauth_ms(client):
            log.warning(
                "the brokers never ask an open connection to log in again (connections.max.reauth.ms is 0): "
                "a replaced or revoked password goes on working on every connection that logged in with "
                "it; set it on the brokers (docs/kafka-security.md)"
            )
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


@dataclass(frozen=True)
class Revoked:
    """What a revoke took away: the SCRAM mechanisms whose credential it deleted, and the grants."""

    institution: str
    credentials: list[str]
    grants: list[AclBinding]
    # How long a connection already open keeps its login: the brokers' connections.max.reauth.ms (0: until
    # it closes; None: the brokers did not say).
    reauth_ms: int | None

    @property
    def nothing(self) -> bool:
        """Nothing was left to take: revoked before, or never given Kafka access."""
        return not self.credentials and not self.grants


async def revoke_institution(admin: KafkaConnection, institution: str) -> Revoked:
    """Take an institution's Kafka access away: every ACL binding of its principal (what
    `institution_grants` gave, and whatever was granted to it by hand), then its SCRAM credentials.
    The grants go first: a connection already open is refused every topic at once; with the credential
    gone no new connection logs in, and an open one is closed at its next re-authentication (the
    brokers' `connections.max.reauth.ms`). Its topics and their records stay. Idempotent: revoking again
    takes nothing and says so. Logs one record of what it took, by whom; one that fails part-way logs
    what it had taken and raises (run it again)."""
    if problem := institution_id_problem(institution):
        raise ValueError(f"institution id {institution!r}: {problem}")
    grants: list[AclBinding] = []
    credentials: list[str] = []

    def audit(message: str, level: int = logging.INFO, **more: object) -> None:
        fields = {
            "institution": institution,
            "operator": _operator(),
            "kafka_principal": admin.username,
            "grants_deleted": [str(grant) for grant in grants],
            "credentials_deleted": credentials,
            **more,
        }
        log.log(level, message, extra={"fields": fields})

    async with admin_client(admin) as client:
        try:
            grants = await delete_acls_of(client, institution)
            credentials = await delete_user(client, institution)
        except BaseException:
            audit("institution's Kafka access only partly revoked: run the revoke again", logging.ERROR)
            raise
        try:
            lifetime: int | None = await reauth_ms(client)
        except (
            KafkaError,
            RuntimeError,
            TimeoutError,
        ) as exc:  # the revoke is done; only the report lacks it
            log.warning("the brokers did not say their connections.max.reauth.ms", exc_info=exc)
            lifetime = None
    revoked = Revoked(institution, credentials, grants, lifetime)
    audit(
        "nothing left to revoke" if revoked.nothing else "institution's Kafka access revoked",
        reauth_ms=lifetime,
    )
    return revoked


def _report(revoked: Revoked, prefix: str) -> str:
    """What an operator reads after a revoke."""
    who = revoked.institution
    if revoked.nothing:
        return (
            f"{who}: nothing left to revoke: no SCRAM credential and no grant to User:{who} "
            "(revoked already, or never given Kafka access)"
        )
    kept = ", ".join(topics.name(t, prefix) for t in topics.institution_topics(who))
    lines = [
        f"{who}: Kafka access revoked",
        f"  SCRAM credentials deleted: {', '.join(revoked.credentials) or 'none (had none)'}",
        f"  grants deleted: {len(revoked.grants)}",
        *(f"    {grant}" for grant in revoked.grants),
        f"  topics kept, with their records: {kept}",
    ]
    if revoked.reauth_ms:
        lines.append(
            f"  a connection still open is closed within {revoked.reauth_ms / 1000:g} s, "
            "at its next re-authentication (the brokers' connections.max.reauth.ms)"
        )
    elif revoked.reauth_ms is None:
        lines.append(
            "  a connection still open is closed at its next re-authentication, if the brokers ask for "
            "one: they did not say their connections.max.reauth.ms"
        )
    else:
        lines.append(
            "  WARNING: the brokers never ask an open connection to log in again (connections.max.reauth.ms "
            "is 0): one opened before now keeps its login, though no grant, until it closes. Set it "
            "(docs/kafka-security.md) and restart the brokers to close such connections now."
        )
    return "\n".join(lines)


def _operator() -> str:
    """Who runs the command, as the machine knows them (a container's uid may have no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def main() -> None:
    from services.kit.logging import configure_logging
    from services.kit.settings import CommonSettings, Environment
    from streams.connection import connection

    parser = argparse.ArgumentParser(
        prog="python -m streams.acls",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    revoke = sub.add_parser(
        "revoke",
        help="take an institution's Kafka access away: its SCRAM credentials and every grant to its "
        "principal (the topics stay); idempotent",
        description="Delete the institution's SCRAM credentials and every ACL binding of its principal "
        "(User:<id>), including any granted by hand. No new connection logs in; one already open is "
        "refused every topic at once and closed at its next re-authentication (the brokers' "
        "connections.max.reauth.ms). Its topics and their records are kept as evidence. Revoking again "
        "succeeds and says nothing was left. To replace a leaked password and keep the access, run "
        "`institution <id> --kind ... --password-file <new>` instead.",
    )
    revoke.add_argument("id", help="the institution id (as given to `institution`)")
    args = parser.parse_args()
    if args.command == "revoke" and (problem := institution_id_problem(args.id)):
        parser.error(f"institution id {args.id!r}: {problem}")
    common = CommonSettings()
    if common.environment == Environment.PRODUCTION and (
        args.command == "institutions" or (args.command == "institution" and args.password_file is None)
    ):
        # The development password is derived from a public key: anyone could log in as the institution.
        parser.error("in production an institution's password comes from --password-file")
    configure_logging(service="streams.acls", level=common.log_level, pseudonym_key=common.pseudonym_key)
    admin = connection(common, ADMIN)
    if args.command == "revoke":
        revoked = asyncio.run(revoke_institution(admin, args.id))
        sys.stdout.write(_report(revoked, common.topic_prefix) + "\n")
        return
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
