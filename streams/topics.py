"""The one registry of Kafka topics: names, partitions, retention and what each carries."""

from __future__ import annotations

import re
from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000

# Every event topic has the same partition count and the same key (the person's phone number), so a
# person's telecom, bank and payment events land in the same partition number of their three topics;
# the scorer's range assignor then hands those partitions to one instance. Never change one alone.
EVENT_PARTITIONS = 6


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    retention_ms: int
    purpose: str
    cleanup_policy: str = "delete"
    configs: tuple[tuple[str, str], ...] = ()  # further topic configs, e.g. a larger max.message.bytes

    def topic_configs(self) -> dict[str, str]:
        """The configs a new topic is created with."""
        return {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": self.cleanup_policy,
            **dict(self.configs),
        }


EVENTS_TELECOM = Topic(
    "events.telecom", EVENT_PARTITIONS, 7 * DAY_MS, "call, SMS and SIM events from telecoms"
)
EVENTS_BANK = Topic(
    "events.bank", EVENT_PARTITIONS, 7 * DAY_MS, "transfer, account and login events from banks"
)
EVENTS_PAYMENT = Topic(
    "events.payment",
    EVENT_PARTITIONS,
    7 * DAY_MS,
    "payment, top-up and withdrawal events from payment providers",
)
DEAD_LETTER = Topic(
    "events.dead-letter", 3, 30 * DAY_MS, "messages that failed validation, with the reason in headers"
)
TRANSFERS_BY_ACCOUNT = Topic(
    "scorer.transfers-by-account",
    EVENT_PARTITIONS,
    2 * DAY_MS,
    "scorer-internal: money movements re-keyed by account, so one account's in- and outflows meet",
)
# Compacted: the latest snapshot of each scorer stage partition, which a restarted or newly assigned
# instance loads instead of replaying the whole input. Partition i holds stage persons/i, partition
# EVENT_PARTITIONS + i stage accounts/i, so the newest snapshot is simply a partition's last record.
# Snapshots are large (a partition's whole state, compressed), hence the raised message size; short
# segments let compaction drop superseded snapshots within the hour.
SNAPSHOTS = Topic(
    "scorer.snapshots",
    2 * EVENT_PARTITIONS,
    7 * DAY_MS,
    "scorer-internal: per-partition state snapshots with the input offsets they reflect",
    cleanup_policy="compact",
    configs=(
        ("max.message.bytes", str(64 * 1024 * 1024)),
        ("segment.ms", str(3600 * 1000)),
        ("min.cleanable.dirty.ratio", "0.1"),
    ),
)
# Co-partitioned with the event topics: the scorer's stage one reads a person's alerts back (keyed by
# person) beside their events.
ALERTS = Topic(
    "alerts", EVENT_PARTITIONS, 30 * DAY_MS, "alerts from the scorer to the coordination service (and back)"
)
ESCALATIONS = Topic(
    "escalations", 3, 90 * DAY_MS, "overdue instructions and failed deliveries, announced to supervisors"
)
# Compacted, keyed by a hash of the number: the latest record per number is its state, so the scorer
# (and a telecom) reading from the beginning holds the whole list. Removals are records, not tombstones.
BLOCKLIST = Topic(
    "blocklist",
    3,
    365 * DAY_MS,
    "fraud numbers to block, for telecoms and the scorer",
    cleanup_policy="compact",
)
# The same for accounts confirmed as fraud receivers (mule accounts), keyed by a hash of institution and
# account; a topic of its own, for banks, payment providers and the scorer: telecoms see no accounts.
BLOCKLIST_ACCOUNTS = Topic(
    "blocklist.accounts",
    3,
    365 * DAY_MS,
    "mule accounts confirmed as fraud receivers, for banks, payment providers and the scorer",
    cleanup_policy="compact",
)
# Coordination to the blocklist: accounts that received victims' money (a case confirmed as fraud, an
# executed freeze), to be reviewed for the accounts list. Keyed by account, read by the blocklist only.
FRAUD_RECEIVERS = Topic(
    "fraud-receivers",
    3,
    30 * DAY_MS,
    "accounts confirmed as fraud receivers, from coordination to the blocklist's review",
)
# Three topics per institution that uses Kafka, made when it is given its principal (streams.acls): the
# set of institutions lives in the database, not here. Kafka ACLs are per topic, not per record, so what
# an institution writes goes to topics only its principal may write: the topic names the sender.
#   instructions.<id>            it reads its instructions and notices (keyed by instruction id)
#   instruction-responses.<id>   it writes its answers (keyed by instruction id); coordination reads all
#   intake.<id>                  it writes events straight to Kafka; ingest checks and forwards them
INSTRUCTIONS_PARTITIONS = 3
INSTRUCTIONS_RETENTION_MS = 30 * DAY_MS
INSTITUTION_ID = r"[a-z0-9][a-z0-9-]{1,39}"  # as streams.schemas.events.InstitutionId

EVENT_TOPICS = {"telecom": EVENTS_TELECOM, "bank": EVENTS_BANK, "payment": EVENTS_PAYMENT}
ALL = (
    EVENTS_TELECOM,
    EVENTS_BANK,
    EVENTS_PAYMENT,
    DEAD_LETTER,
    TRANSFERS_BY_ACCOUNT,
    SNAPSHOTS,
    ALERTS,
    ESCALATIONS,
    BLOCKLIST,
    BLOCKLIST_ACCOUNTS,
    FRAUD_RECEIVERS,
)


def name(topic: Topic, prefix: str = "") -> str:
    """The topic's name on the broker; a prefix keeps test runs apart from a running stack."""
    return f"{prefix}{topic.name}"


def _institution_topic(head: str, institution_id: str, retention_ms: int, purpose: str) -> Topic:
    return Topic(f"{head}.{institution_id}", INSTRUCTIONS_PARTITIONS, retention_ms, purpose)


def instructions_for(institution_id: str) -> Topic:
    """The topic an institution reads its instructions and notices from (keyed by instruction id)."""
    purpose = f"instructions and notices addressed to {institution_id}"
    return _institution_topic("instructions", institution_id, INSTRUCTIONS_RETENTION_MS, purpose)


def responses_from(institution_id: str) -> Topic:
    """The topic an institution writes its answers to (only its principal may)."""
    purpose = f"answers of {institution_id} to its instructions, consumed by coordination"
    return _institution_topic("instruction-responses", institution_id, INSTRUCTIONS_RETENTION_MS, purpose)


def intake_for(institution_id: str) -> Topic:
    """The topic an institution produces its events to straight (only its principal may); ingest checks
    them as it checks a posted batch and forwards them to the event topics."""
    purpose = f"events of {institution_id} produced straight to Kafka, forwarded by ingest"
    return _institution_topic("intake", institution_id, 7 * DAY_MS, purpose)


def institution_topics(institution_id: str) -> tuple[Topic, Topic, Topic]:
    return instructions_for(institution_id), responses_from(institution_id), intake_for(institution_id)


def family_pattern(family: Topic, prefix: str = "") -> str:
    """The regular expression of a per-institution family's names (e.g. every institution's answers),
    for a pattern subscription. `family` is the family's topic for an empty institution id."""
    return f"^{re.escape(name(family, prefix))}{INSTITUTION_ID}$"


def institution_of(topic_name: str, family: Topic, prefix: str = "") -> str | None:
    """The institution a family's topic belongs to (its name says so), or None if it is not the family's."""
    head = name(family, prefix)
    rest = topic_name[len(head) :] if topic_name.startswith(head) else ""
    return rest if re.fullmatch(INSTITUTION_ID, rest) else None
