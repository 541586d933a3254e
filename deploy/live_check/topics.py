"""What a live run left on Kafka, read back for `deploy.live_check`: the alerts, and (for diagnosis) the
events replayed through the shared feature code into a labelled feature table of the live money-outs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from models.features.vector import FEATURE_NAMES
from models.training.dataset import Replay
from models.training.table import FeatureTable, save
from services.kit.settings import CommonSettings
from streams import acls, topics
from streams.connection import connection
from streams.schemas.alerts import Alert, alert_adapter, event_ref
from streams.schemas.events import envelope_adapter


async def read_topics(common: CommonSettings, wanted: Iterable[topics.Topic]) -> list[ConsumerRecord]:
    """Every record of these topics, from the beginning to the end they have now."""
    consumer = AIOKafkaConsumer(
        **connection(common, acls.ADMIN).options(), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(topics.name(t, common.topic_prefix), p)
            for t in wanted
            for p in range(t.partitions)
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[ConsumerRecord] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500, max_records=10_000), 60)
            for records in batch.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def read_alerts(common: CommonSettings) -> list[Alert]:
    return [alert_adapter.validate_json(r.value or b"") for r in await read_topics(common, [topics.ALERTS])]


def _labels(truth: Path) -> dict[str, tuple[str, str]]:
    """Money-out ref → (scenario id, typology) for every victim payment in the truth file."""
    out: dict[str, tuple[str, str]] = {}
    for line in truth.read_bytes().splitlines() if truth.exists() else []:
        record: dict[str, Any] = orjson.loads(line)
        victims = record.get("victim_payment_ids") or record.get("triggering_event_ids") or []
        for ref in victims:
            out[str(ref)] = (str(record["scenario_id"]), str(record.get("typology", "")))
    return out


async def save_live_table(common: CommonSettings, truth: Path, path: Path, *, since: float) -> dict[str, Any]:
    """Replay the run's events in arrival order (warm-up included, so state builds as it did live) and
    save the rows of the money-outs made from `since` on (0: warm-up too), labelled by the truth file."""
    records = await read_topics(common, topics.EVENT_TOPICS.values())
    records.sort(key=lambda r: r.timestamp)
    replay = Replay()
    for record in records:
        envelope = envelope_adapter.validate_json(record.value or b"")
        ref = event_ref(envelope.institution, envelope.event.event_id)
        replay.apply(record.timestamp / 1000, envelope.institution, envelope.event, ref)
    labels = _labels(truth)
    keep = [i for i, (_, _, at) in enumerate(replay.meta) if at >= since]
    refs = [replay.meta[i][0] for i in keep]
    table = FeatureTable(
        features=FEATURE_NAMES,
        X=np.array([replay.rows[i] for i in keep], dtype=np.float64).reshape(len(keep), len(FEATURE_NAMES)),
        label=np.array([r in labels for r in refs], dtype=np.int8),
        scored_at=np.array([replay.meta[i][1] for i in keep]),
        occurred_at=np.array([replay.meta[i][2] for i in keep]),
        event_ref=np.array(refs),
        episode_id=np.array([labels.get(r, ("", ""))[0] for r in refs]),
        typology=np.array([labels.get(r, ("", ""))[1] for r in refs]),
    )
    save(table, path)
    return {"path": str(path), "rows": len(table), "positives": int(table.label.sum())}
