"""The movements between the scorer's stages: stage two reads what a newer stage one adds (a tolerant
reader, so the stages can be upgraded one after the other), and still refuses a bad value."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from streams.schemas.movements import movement_adapter

MOVEMENT = {
    "direction": "in",
    "account": "6222000000000000001",
    "institution": "bank-a",
    "counterparty": "6217000000000000002",
    "counterparty_institution": "bank-b",
    "amount": 500.0,
    "occurred_at": "2026-12-04T10:00:00+08:00",
    "event_ref": "bank-b:e-1",
}


def test_a_field_of_a_newer_stage_one_is_ignored_a_bad_value_is_not() -> None:
    newer = movement_adapter.validate_json(orjson.dumps({**MOVEMENT, "added_later": {"x": 1}}))
    assert newer.event_ref == "bank-b:e-1" and newer.opens is None
    with pytest.raises(ValidationError):
        movement_adapter.validate_json(orjson.dumps({**MOVEMENT, "opens": "not a uuid"}))
