"""The live loop, with a sink that records instead of sending: batching, truth and stats."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from services.simulator.model import INSTITUTIONS, IdSource, SimEvent
from services.simulator.normal import NormalTraffic
from services.simulator.population import build_population
from services.simulator.runner import Runner, TrafficConfig, TruthWriter
from services.simulator.scenarios import ScenarioFactory
from services.simulator.sinks import KafkaSink, SendResult
from streams.connection import KafkaConnection


class RecordingSink:
    def __init__(self) -> None:
        self.batches: list[tuple[str, list[SimEvent]]] = []

    async def start(self) -> None:
        pass

    async def send(self, institution: str, events: Sequence[SimEvent]) -> SendResult:
        self.batches.append((institution, list(events)))
        return SendResult(len(events), 0, None, 0.0, 0.001, 1)

    async def close(self) -> None:
        pass


async def test_runner_batches_by_institution_and_writes_truth(tmp_path: Path) -> None:
    pop = build_population(300, seed=1)
    ids = IdSource("t")
    sink = RecordingSink()
    truth = TruthWriter(tmp_path / "truth.jsonl")
    config = TrafficConfig(
        rate=2000,
        duration_s=0.5,
        scams_per_minute=1200,
        flat=True,
        batch=20,
        linger_s=0.05,
        finish_scenarios=True,
    )
    # A huge time scale makes every scenario play out within the half second.
    runner = Runner(
        config, NormalTraffic(pop, ids), ScenarioFactory(pop, ids, time_scale=2000), sink, truth=truth
    )
    stats = await runner.run()
    truth.close()

    sent = [e for _, batch in sink.batches for e in batch]
    # How many events half a second paces out depends on the machine; that all are acknowledged does not.
    assert stats.acked == stats.generated == len(sent) > 0
    assert len({i for i, _ in sink.batches}) >= 2  # several institutions, each batched on its own
    assert all(len(b) <= 20 and all(e.institution == i for e in b) for i, b in sink.batches)
    assert {i for i, _ in sink.batches} <= set(INSTITUTIONS)
    records = [orjson.loads(line) for line in (tmp_path / "truth.jsonl").read_bytes().splitlines()]
    assert records and all(r["complete"] for r in records)
    assert sum(stats.scams.values()) == len(records)
    refs = {e.ref for e in sent}
    for record in records:
        assert set(record["event_ids"]) <= refs


async def test_kafka_sink_builds_envelopes_keyed_by_person_on_each_institution_intake() -> None:
    from streams import keys
    from streams.schemas.events import envelope_adapter

    pop = build_population(100, seed=1)
    traffic = NormalTraffic(pop, IdSource("t"))
    sink = KafkaSink(
        KafkaConnection("127.0.0.1:1", "unused", "unused"), list(INSTITUTIONS), topic_prefix="x."
    )
    for _ in range(200):
        event = traffic.next(datetime.now(UTC))
        record = sink._record(event.institution, event)
        envelope = envelope_adapter.validate_json(record.value)
        assert envelope.received_at is None and envelope.institution == event.institution
        assert record.key == keys.person_key(envelope.event.person_phone)
        assert record.topic == f"x.intake.{event.institution}"
