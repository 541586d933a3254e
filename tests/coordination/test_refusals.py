"""The notice of a refused answer, without Kafka: its id names the record, and what it states is bounded
and storable whatever the sender wrote."""

from __future__ import annotations

import uuid

import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.coordination.instructions import refusals
from services.kit.errors import InvalidInput
from streams.schemas.instructions import response_adapter


def _record(offset: int = 7, timestamp: int = 1_764_236_800_000, topic: str = "instruction-responses.bank-a"):
    return ConsumerRecord(topic, 1, offset, timestamp, 0, None, b"{}", None, 2, 0, [])


def _refused(body: bytes) -> refusals.Refused:
    try:
        response_adapter.validate_json(body)
    except ValidationError as exc:
        return refusals.unreadable(exc, body)
    raise AssertionError("the body was valid")


def test_a_record_has_one_message_id_and_another_record_another():
    first = refusals.message_id(_record())
    assert first == refusals.message_id(_record()) and first.startswith("refused:") and len(first) <= 80
    assert first != refusals.message_id(_record(offset=8))
    assert first != refusals.message_id(_record(topic="run-2-instruction-responses.bank-a"))  # another run
    assert first != refusals.message_id(_record(timestamp=1_764_236_900_000))  # a topic made anew


def test_an_unreadable_record_names_what_it_can():
    not_json = _refused(b"\x00\xff not json")
    assert (not_json.response_id, not_json.instruction_id) == (None, None)
    assert not_json.error.message == "request body could not be parsed"
    rid, iid = uuid.uuid4(), uuid.uuid4()
    wrong = _refused(orjson.dumps({"response_id": str(rid), "instruction_id": str(iid), "outcome": "done"}))
    assert (wrong.response_id, wrong.instruction_id) == (rid, iid)
    fields = {p["field"] for p in wrong.error.details}
    assert {"body.outcome", "body.institution_id"} <= fields and "body.responded_at" not in fields
    odd = _refused(orjson.dumps({"response_id": "x" * 10_000, "instruction_id": 5}))
    assert (odd.response_id, odd.instruction_id) == (None, None)


def test_what_a_notice_states_is_bounded_and_storable():
    problems = [
        {"field": f"body.query_result.transfers.{i}.amount", "reason": "bad\x00\ud800"} for i in range(500)
    ]
    stated = refusals._stated(InvalidInput("request failed validation", details=problems))
    assert stated.message == "request failed validation (500 problems; the first 20 listed)"
    assert isinstance(stated.details, list) and len(stated.details) == refusals.MAX_DETAILS
    assert stated.details[0]["reason"] == "bad\ufffd?"
    long = refusals._stated(
        InvalidInput("x" * 5_000, details={"field": "body.reason", "outcome": "executed"})
    )
    assert len(long.message) == refusals.MAX_TEXT and long.details == {
        "field": "body.reason",
        "outcome": "executed",
    }
    assert orjson.dumps(stated.model_dump(mode="json"))  # what the outbox's JSONB column takes
