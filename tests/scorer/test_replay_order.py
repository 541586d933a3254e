"""After a restore, stage one reads each input again from its snapshot's offsets, silently up to the offsets
the previous owner committed. Its inputs are fetched apart: a payment the previous owner never handled can
come before a call it did handle. The call, replayed, must still reach that payment (found by the fault
suite: a scam whose call was replayed after its transfer was never alerted)."""

from __future__ import annotations

from aiokafka import ConsumerRecord, TopicPartition

from models.features.vector import FEATURE_NAMES
from services.scorer.person_stage import PersonStage
from streams import topics
from streams.schemas.movements import Movement, movement_adapter
from tests.scorer.scenes import Event, event_record, scene, stage_one

UNKNOWN = FEATURE_NAMES.index("caller_unknown")
LENGTH = FEATURE_NAMES.index("call_duration_min")


def on(topic: topics.Topic, event: Event, offset: int) -> tuple[TopicPartition, ConsumerRecord[bytes, bytes]]:
    institution, body = event
    r = event_record(institution, body, offset)
    record = ConsumerRecord(topic.name, r.partition, offset, 0, 0, r.key, r.value, None, 0, 0, ())
    return TopicPartition(topic.name, r.partition), record


def read(persons: PersonStage, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> list[Movement]:
    out = persons.process({tp: [record]})
    return [
        movement_adapter.validate_json(r.value) for r in out if r.topic == topics.TRANSFERS_BY_ACCOUNT.name
    ]


def test_a_replayed_call_rescores_a_payment_this_owner_handled_before_it() -> None:
    s = scene()
    persons = stage_one()
    call_tp, call = on(topics.EVENTS_TELECOM, s.call(minutes_ago=40, minutes=35), 5)
    paid_tp, paid = on(topics.EVENTS_BANK, s.transfer("30000.00", minutes_ago=3), 3)
    # Restored from a snapshot older than the call; the previous owner committed the call, not the payment.
    persons.checkpoints.replay_until.update({call_tp: 6, paid_tp: 3})

    first = read(persons, paid_tp, paid)  # fetched first: scored without the call
    (inflow,) = [m for m in first if m.direction == "in"]
    assert inflow.person_features is not None and inflow.person_features[UNKNOWN] == 0.0
    again = read(persons, call_tp, call)  # replayed: its own output is out, not this payment's new score

    assert [(m.rescore, m.event_ref, m.call_caller) for m in again] == [(True, inflow.event_ref, s.caller)]
    assert again[0].person_features is not None
    assert again[0].person_features[UNKNOWN] == 1.0 and again[0].person_features[LENGTH] >= 35


def test_a_replayed_call_does_not_rescore_a_payment_the_previous_owner_handled() -> None:
    """Both below the committed offsets: the previous owner scored the payment (with the call, or again
    after it) and forwarded that; replaying both sends nothing."""
    s = scene()
    persons = stage_one()
    call_tp, call = on(topics.EVENTS_TELECOM, s.call(minutes_ago=40, minutes=35), 5)
    paid_tp, paid = on(topics.EVENTS_BANK, s.transfer("30000.00", minutes_ago=3), 3)
    persons.checkpoints.replay_until.update({call_tp: 6, paid_tp: 4})

    assert read(persons, paid_tp, paid) == []
    assert read(persons, call_tp, call) == []
