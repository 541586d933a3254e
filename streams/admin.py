"""Creates the registry's topics on the broker (idempotent) and checks the broker answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError, for_code

from streams import topics
from streams.connection import KafkaConnection
from streams.credentials import create_acls, delete_acls_under

log = logging.getLogger(__name__)
REPLICATION = "default.replication.factor"
REAUTH = "connections.max.reauth.ms"


@asynccontextmanager
async def admin_client(kafka: KafkaConnection, timeout_s: float = 30) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client of this connection, closed on leaving."""
    admin = AIOKafkaAdminClient(**kafka.options(), request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        yield admin
    finally:
        await admin.close()


async def replication(admin: AIOKafkaAdminClient, timeout_s: float) -> int:
    """Replicas per partition: the cluster's `default.replication.factor`, which every stack sets (three
    on three nodes: writes then need two in sync, `min.insync.replicas`, so one node may be down without
    losing an acknowledged record). Not the brokers up now: a topic made while one is down would keep
    fewer replicas for good; with the configured number Kafka refuses it until enough are up."""
    brokers = (await asyncio.wait_for(admin.describe_cluster(), timeout_s)).get("brokers") or ()
    if not brokers:
        raise RuntimeError("Kafka described a cluster without brokers")
    broker = str(brokers[0]["node_id"])  # every node is configured alike; any live one answers
    wanted = ConfigResource(ConfigResourceType.BROKER, broker, {REPLICATION: None})
    (response,) = await asyncio.wait_for(admin.describe_configs([wanted]), timeout_s)
    ((code, message, _, _, entries),) = response.resources
    if code:
        raise RuntimeError(f"Kafka did not describe broker {broker}: {for_code(code).__name__} {message}")
    replicas = int({entry[0]: entry[1] for entry in entries}[REPLICATION])
    if replicas < min(3, len(brokers)):
        # Kafka's own default is 1: on a cluster of three an acknowledged record would live on one node.
        log.warning(
            "topics are made with fewer replicas than the cluster has nodes up: set %s to 3",
            REPLICATION,
            extra={"fields": {"replicas": replicas, "brokers_up": len(brokers)}},
        )
    return replicas


async def reauth_ms(admin: AIOKafkaAdminClient, timeout_s: float = 30) -> int:
    """How long a login lasts on a connection already open: the longest `connections.max.reauth.ms` of the
    brokers up, or 0 if one of them never asks for a new login (Kafka's default). Only then does a deleted
    or replaced SCRAM credential stop the connections that logged in with it (KIP-368); clients that do
    not log in again by themselves (aiokafka) have the connection closed and connect anew."""
    brokers = (await asyncio.wait_for(admin.describe_cluster(), timeout_s)).get("brokers") or ()
    wanted = [ConfigResource(ConfigResourceType.BROKER, str(b["node_id"]), {REAUTH: None}) for b in brokers]
    intervals = []
    for response in await asyncio.wait_for(admin.describe_configs(wanted), timeout_s):
        for code, message, _, broker, entries in response.resources:
            if code:
                raise RuntimeError(
                    f"Kafka did not describe broker {broker}: {for_code(code).__name__} {message}"
                )
            intervals.append(int({entry[0]: entry[1] for entry in entries}[REAUTH]))
    return 0 if not intervals or 0 in intervals else max(intervals)


def new_topic(topic: topics.Topic, prefix: str, replicas: int) -> NewTopic:
    return NewTopic(
        name=topics.name(topic, prefix),
        num_partitions=topic.partitions,
        replication_factor=replicas,
        topic_configs={**topic.topic_configs(), "min.insync.replicas": str(min(2, replicas))},
    )


async def ensure_topics(kafka: KafkaConnection, prefix: str = "", timeout_s: float = 30) -> list[str]:
    """Create every registered topic that is missing, and grant the services what they use of the
    prefix's topics (streams.acls); return the names created."""
    from streams.acls import service_grants  # the grants name the topics: streams.acls imports this module

    async with admin_client(kafka, timeout_s) as admin:
        await asyncio.wait_for(create_acls(admin, service_grants(prefix)), timeout_s)
        return await create_missing(admin, topics.ALL, prefix, timeout_s)


class TopicRefused(RuntimeError):
    """Kafka refused to create topics (a policy, an authorisation, too few brokers for the replication)."""

    def __init__(self, refused: dict[str, str], lasting: set[str]) -> None:
        super().__init__(f"Kafka refused to create topics: {refused}")
        self.refused = refused  # topic name -> Kafka's error
        self.lasting = lasting  # those it will refuse again (a name, a policy, a grant), not a passing state


def _passing(code: int) -> bool:
    """A refusal that may not last: too few brokers up for the replication, or a retriable error."""
    error = for_code(code)
    return error.errno == InvalidReplicationFactorError.errno or bool(error.retriable)


async def create_missing(
    admin: AIOKafkaAdminClient, wanted: Sequence[topics.Topic], prefix: str, timeout_s: float
) -> list[str]:
    """Create those of the topics that do not exist and wait for their leaders; return the names created
    here. TopicRefused names each topic Kafka would not create, with its error (the others are made)."""
    existing = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
    missing = [t for t in wanted if topics.name(t, prefix) not in existing]
    if not missing:
        return []
    replicas = await replication(admin, timeout_s)
    new = [new_topic(t, prefix, replicas) for t in missing]
    created, refused, lasting = await _create(admin, new, timeout_s)
    made = {t.name: t.num_partitions for t in new if t.name not in refused}
    if made:
        await wait_for_leaders(admin, made, timeout_s)
    if refused:
        raise TopicRefused(refused, lasting)
    return created


async def _create(
    admin: AIOKafkaAdminClient, new: list[NewTopic], timeout_s: float
) -> tuple[list[str], dict[str, str], set[str]]:
    """Ask Kafka for the topics; return those it created, and those it refused with its error. Kafka
    answers each topic with an error code rather than failing the request; one that exists already (made
    concurrently by another instance) is neither."""
    response = await asyncio.wait_for(admin.create_topics(new, timeout_ms=int(timeout_s * 1000)), timeout_s)
    created: list[str] = []
    refused: dict[str, str] = {}
    lasting: set[str] = set()
    for name, code, *message in response.topic_errors:  # (topic, code, message): no message before v1
        if code == 0:
            created.append(name)
        elif code != TopicAlreadyExistsError.errno:
            error = for_code(code).__name__
            refused[name] = f"{error}: {message[0]}" if message and message[0] else error
            if not _passing(code):
                lasting.add(name)
    return created, refused, lasting


async def wait_for_leaders(admin: AIOKafkaAdminClient, wanted: dict[str, int], timeout_s: float) -> None:
    """Wait until every partition of the new topics has a leader in the broker's metadata: a topic is
    created before its partitions are led, and a produce or fetch in between fails (NotLeader)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = await asyncio.wait_for(admin.describe_topics(list(wanted)), timeout_s)
        ready = {
            t["topic"]
            for t in described
            if t["error_code"] == 0
            and len(t["partitions"]) == wanted[t["topic"]]
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
        }
        if ready >= set(wanted):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"topics without leaders after {timeout_s}s: {sorted(set(wanted) - ready)}")
        await asyncio.sleep(0.1)


async def ensure_topic(
    kafka: KafkaConnection, topic: topics.Topic, prefix: str = "", timeout_s: float = 30
) -> bool:
    """Create one topic (e.g. an institution's `instructions.<id>`) if it is missing; True if created."""
    async with admin_client(kafka, timeout_s) as admin:
        return bool(await create_missing(admin, [topic], prefix, timeout_s))


async def delete_topics(kafka: KafkaConnection, prefix: str, timeout_s: float = 30) -> None:
    """Delete every topic with this prefix, and the grants on its topics and groups (test runs clean up
    after themselves)."""
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix")
    async with admin_client(kafka, timeout_s) as admin:
        await asyncio.wait_for(delete_acls_under(admin, prefix), timeout_s)
        names = [t for t in await asyncio.wait_for(admin.list_topics(), timeout_s) if t.startswith(prefix)]
        if names:
            await asyncio.wait_for(admin.delete_topics(names), timeout_s)


def main() -> None:
    import argparse

    from services.kit.settings import CommonSettings
    from streams.acls import ADMIN
    from streams.connection import connection

    parser = argparse.ArgumentParser(description="create (or, with --delete, remove) the Stopline topics")
    parser.add_argument("--prefix", default=None)
    parser.add_argument("--delete", action="store_true", help="delete the topics of a (non-empty) prefix")
    args = parser.parse_args()
    settings = CommonSettings()
    prefix = settings.topic_prefix if args.prefix is None else args.prefix
    kafka = connection(settings, ADMIN)
    if args.delete:
        asyncio.run(delete_topics(kafka, prefix))
        return
    created = asyncio.run(ensure_topics(kafka, prefix))
    log.info("topics ready", extra={"fields": {"created": created}})


if __name__ == "__main__":
    main()
