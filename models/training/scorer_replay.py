"""The live scorer's own code, offline: simulated traffic through the two scorer stages (`PersonStage`,
`AccountStage`) as Kafka would hand it to them, in micro-batches of a few seconds of report time, each
stage's output fed to the next and the alerts fed back to stage one (as the alerts topic does). What it
alerts on is what the scorer would alert on, rules, thresholds, warm-up gate and episodes included: the
report's alert-level figures come from here, and `deploy.live_check` compares the live path with it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import ConsumerRecord, TopicPartition

from models.artifact import load
from services.scorer.account_stage import AccountStage, Pending
from services.scorer.main import VERSION
from services.scorer.model_slot import ModelSlot
from services.scorer.person_stage import PersonStage
from services.scorer.settings import ScorerSettings
from services.simulator.model import SimEvent
from streams import keys, topics
from streams.connection import KafkaConnection
from streams.consumer import Batch
from streams.producer import Producer, Record
from streams.schemas.alerts import Alert
from streams.schemas.event_time import EventTimeBounds

BATCH_S = 30.0  # report time a micro-batch spans: the alerts come back to stage one after it


@dataclass
class Replayed:
    """Every alert message the scorer sent (revisions included), with the report time it was made at;
    and every row the model scored (a money-out scored again after a late call, SIM change, link SMS or
    login is a row again)."""

    alerts: list[tuple[float, Alert]] = field(default_factory=list)
    events: int = 0
    rows: list[list[float]] = field(default_factory=list)
    # Per row: (money-out ref, scored at, occurred at, payer's phone, payee "institution/account").
    meta: list[tuple[str, float, float, str, str]] = field(default_factory=list)


class _Recording(AccountStage):
    """The account stage, keeping the rows it scores (the evaluation's feature table, from the scorer's
    own computation)."""

    replayed: Replayed
    now: float = 0.0

    def _score(self, pending: list[Pending]) -> list[tuple[Alert, int]]:
        for p in pending:
            m = p.move
            self.replayed.rows.append(p.row)
            self.replayed.meta.append(
                (
                    m.event_ref,
                    self.now,
                    m.occurred_at.timestamp(),
                    m.payer_phone or "",
                    f"{m.institution}/{m.account}",
                )
            )
        return super()._score(pending)


class OfflineScorer:
    def __init__(self, artifacts: Path, version: str, settings: ScorerSettings | None = None) -> None:
        self.settings = settings or ScorerSettings()
        load(version, artifacts)  # a clear error before anything runs
        self.now = 0.0
        # Never started: the stages' output is ours.
        unused = Producer(
            KafkaConnection("127.0.0.1:1", username="offline", password=""), client_id="offline"
        )
        # Old traffic is not refused: the clock is the replay's.
        bounds = EventTimeBounds(max_ahead_s=300, history_s=7 * 86_400)
        self.persons = PersonStage(self.settings, unused, prefix="", bounds=bounds, clock=lambda: self.now)
        slot = ModelSlot(artifacts, version=version, threshold=self.settings.model_alert_threshold)
        self.accounts = _Recording(
            self.settings,
            unused,
            prefix="",
            version=VERSION,
            model=slot,
            bounds=bounds,
            clock=lambda: self.now,
        )
        self._offsets: dict[TopicPartition, itertools.count[int]] = {}
        self._alerts_back: list[Record] = []

    def run(self, events: Iterable[tuple[float, SimEvent]], *, batch_s: float = BATCH_S) -> Replayed:
        out = self.accounts.replayed = Replayed()
        batch: list[Record] = []
        end = None
        for reported_at, sim in events:
            if end is not None and reported_at >= end and batch:
                self._batch(batch, end, out)
                batch = []
            if end is None or reported_at >= end:
                end = reported_at - reported_at % batch_s + batch_s
            body = {"institution": sim.institution, "received_at": None, "event": sim.body}
            topic = topics.name(topics.EVENT_TOPICS[sim.source])
            batch.append(
                Record(
                    topic,
                    orjson.dumps(body),
                    keys.person_key(sim.person_phone),
                    timestamp_ms=int(reported_at * 1000),
                )
            )
            out.events += 1
        if batch and end is not None:
            self._batch(batch, end, out)
        return out

    def _batch(self, records: list[Record], now: float, out: Replayed) -> None:
        self.now = self.accounts.now = now
        moves = self.persons.process(self._consumed(records + self._alerts_back))
        self._alerts_back = []
        produced, alerts = self.accounts.process(self._consumed([r for r in moves if r.topic == _MOVES]))
        self.persons.prune(time.monotonic())
        self.accounts.prune()
        for alert, _ in alerts:
            out.alerts.append((now, alert))
        self._alerts_back = [r for r in produced if r.topic == _ALERTS]

    def _consumed(self, records: list[Record]) -> Batch:
        """Records as a consumer would get them: on their key's partition, at the next offset."""
        batch: Batch = {}
        for r in records:
            assert r.key is not None
            tp = TopicPartition(r.topic, keys.partition_of(r.key, topics.EVENT_PARTITIONS))
            offset = next(self._offsets.setdefault(tp, itertools.count()))
            record = ConsumerRecord(
                r.topic,
                tp.partition,
                offset,
                r.timestamp_ms or int(self.now * 1000),
                0,
                r.key,
                r.value,
                None,
                len(r.key),
                len(r.value),
                r.headers,
            )
            batch.setdefault(tp, []).append(record)
        return batch


_MOVES = topics.name(topics.TRANSFERS_BY_ACCOUNT)
_ALERTS = topics.name(topics.ALERTS)
