"""The one registry of Kafka topics: names, partitions, retention and what each carries."""

from __future__ import annotations

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
ALERTS = Topic("alerts", 6, 30 * DAY_MS, "alerts from the scorer to the coordination service")
INSTRUCTION_RESPONSES = Topic(
    "instruction-responses",
    6,
    30 * DAY_MS,
    "institutions' answers to instructions (keyed by instruction id), consumed by coordination",
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
# One topic per institution, `instructions.<institution id>`, made when the institution is first sent
# something (streams.admin.ensure_topic): the set of institutions lives in the database, not here.
INSTRUCTIONS_PARTITIONS = 3
INSTRUCTIONS_RETENTION_MS = 30 * DAY_MS

EVENT_TOPICS = {"telecom": EVENTS_TELECOM, "bank": EVENTS_BANK, "payment": EVENTS_PAYMENT}
ALL = (
    EVENTS_TELECOM,
    EVENTS_BANK,
    EVENTS_PAYMENT,
    DEAD_LETTER,
    TRANSFERS_BY_ACCOUNT,
    SNAPSHOTS,
    ALERTS,
    INSTRUCTION_RESPONSES,
    ESCALATIONS,
    BLOCKLIST,
)


def name(topic: Topic, prefix: str = "") -> str:
    """The topic's name on the broker; a prefix keeps test runs apart from a running stack."""
    return f"{prefix}{topic.name}"


def instructions_for(institution_id: str) -> Topic:
    """The topic an institution reads its instructions and notices from (keyed by instruction id)."""
    return Topic(
        f"instructions.{institution_id}",
        INSTRUCTIONS_PARTITIONS,
        INSTRUCTIONS_RETENTION_MS,
        f"instructions and notices addressed to {institution_id}",
    )
