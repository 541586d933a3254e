"""Scorer instances on a topic prefix of their own (so the session's scorer is not in their groups),
events produced straight to the event topics, and what the alerts topic holds about a person."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from services.scorer.account_stage import AccountStage
from services.scorer.main import Scorer
from services.scorer.person_stage import PersonStage
from services.scorer.settings import ScorerSettings
from services.scorer.snapshots import Checkpoints, SnapshotStore
from streams import keys, topics
from streams.admin import ensure_topics
from streams.consumer import ConsumerRunner
from streams.schemas.alerts import Alert, alert_adapter
from tests import factories as f
from tests import kafka_tools
from tests.conftest import Infra
from tests.kafka_tools import eventually, read_topic


def bookkeeping(
    store: SnapshotStore | None = None,
    *,
    interval_s: float = 0,
    export: Callable[[int], Any] = lambda p: None,
    drop: Callable[[int], None] = lambda p: None,
    revoke_tail: int = 0,
    revoke_budget_s: float = math.inf,
) -> Checkpoints:
    """The person stage's snapshot bookkeeping alone, with no stage behind it; without a store, nothing is
    written or read."""
    return Checkpoints(
        store,
        stage="persons",
        layout="test",
        interval_s=interval_s,
        export=export,
        restore=lambda p, s: None,
        drop=drop,
        revoke_tail=revoke_tail,
        revoke_budget_s=revoke_budget_s,
    )


async def fresh_prefix(infra: Infra) -> str:
    """A prefix under the session's (deleted with it) with every registered topic made."""
    prefix = f"{infra.prefix}{f.unique('sc')}-"
    await ensure_topics(infra.kafka, prefix)
    return prefix


def scorer(infra: Infra, prefix: str, **settings: Any) -> Scorer:
    common = infra.common.model_copy(update={"topic_prefix": prefix})
    settings.setdefault("model_warmup_hours", 0)  # minutes of events on a fresh state: no warm-up gate
    return Scorer(common, ScorerSettings(**settings))


def persons(instance: Scorer) -> PersonStage:
    """The instance's person stage (it runs one)."""
    assert instance.persons is not None
    return instance.persons


def accounts(instance: Scorer) -> AccountStage:
    """The instance's account stage (it runs one)."""
    assert instance.accounts is not None
    return instance.accounts


async def start(instance: Scorer) -> None:
    """Start and wait until its stages hold partitions (the first two runners: both stages, or the one
    stage and the blocklist reader)."""
    await instance.start()
    await asyncio.gather(*(assigned(r) for r in instance.runners[:2]))


async def assigned(runner: ConsumerRunner) -> None:
    await asyncio.wait_for(runner.started.wait(), 30)  # its consumer exists from then on
    # Holding partitions, and their state restored (by the runner's loop, after the assignment).
    await eventually(lambda: runner.consumer.assignment() and runner.in_group, timeout_s=30)


def person_partitions(instance: Scorer) -> set[int]:
    return {tp.partition for tp in instance.runners[0].consumer.assignment()}


async def send(
    infra: Infra, prefix: str, kind: str, institution: str, events: Sequence[dict[str, Any]]
) -> None:
    """Events as an institution producing to Kafka directly would (envelope, keyed by person)."""
    topic = topics.name(topics.EVENT_TOPICS[kind], prefix)
    producer = AIOKafkaProducer(**infra.kafka.options())
    await producer.start()
    try:
        for event in events:
            phone = event.get("callee") or event["payer_phone"]
            value = orjson.dumps({"institution": institution, "event": event})
            await producer.send_and_wait(topic, value, key=keys.person_key(phone))
    finally:
        await producer.stop()


async def ends(infra: Infra, *names: str) -> int:
    """How many records the topics hold (the sum of their end offsets)."""
    return await kafka_tools.ends(infra.kafka, *names)


async def committed_all(instance: Scorer, infra: Infra, prefix: str) -> None:
    """Wait until both stages have handled and committed everything on their input topics: first the
    person stage (its commit follows its movements' landing, so the movements topic is then complete),
    then the account stage."""
    await kafka_tools.drained(
        infra.kafka,
        (instance.runners[0].group_id, [topics.name(t, prefix) for t in topics.EVENT_TOPICS.values()]),
        (f"{prefix}scorer-accounts", [topics.name(topics.TRANSFERS_BY_ACCOUNT, prefix)]),
        timeout_s=20,
    )


async def alerts_about(infra: Infra, prefix: str, phone: str) -> list[Alert]:
    """Every alert message on the topic about this person (raw messages: duplicates would show)."""
    records = await read_topic(infra.kafka, topics.name(topics.ALERTS, prefix))
    alerts = [alert_adapter.validate_json(r.value or b"") for r in records]
    return [a for a in alerts if a.subject.phone == phone]


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def scam_call(victim: str, minutes_ago: float = 40) -> dict[str, Any]:
    return f.call(victim, start=ago(minutes_ago), minutes=35)


def big_transfer(
    victim: str, account: str, mule: str, amount: str = "30000.00", minutes_ago: float = 3
) -> dict[str, Any]:
    return f.transfer(victim, payer_account=account, payee_account=mule, amount=amount, at=ago(minutes_ago))
