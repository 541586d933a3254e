"""A phone number is E.164, and a Chinese one has no trunk 0 after +86: `+86013947998566` is not another
subscriber than `+8613947998566` but no number at all, so it is refused wherever a number is taken (an
event, a blocklist listing, a contact) rather than kept as one that matches nothing. The published
schema's pattern says the same."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from streams.schemas.events import Phone, event_adapter

phone: TypeAdapter[str] = TypeAdapter(Phone)
PATTERN = re.compile(phone.json_schema()["pattern"])
ACCEPTED = [
    "+8613947998566",
    "+8610123456",
    "+85212345678",
    "+8801712345678",
    "+390612345678",
    "+12025550123",
]
REFUSED = ["+86013947998566", "+8601012345678", "+860", "8613947998566", "+013947998566", "+86 13947998566"]


@pytest.mark.parametrize("number", ACCEPTED + REFUSED)
def test_the_code_and_the_schema_pattern_take_e164_without_a_trunk_zero(number: str):
    try:
        phone.validate_python(number)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == (number in ACCEPTED) == bool(PATTERN.fullmatch(number))


def test_an_event_with_a_trunk_zero_is_refused_naming_the_field():
    call = {
        "type": "telecom.call",
        "event_id": "c-1",
        "occurred_at": datetime.now(UTC).isoformat(),
        "caller": "+86013947998566",
        "callee": "+8613800000001",
        "duration_s": 60,
    }
    with pytest.raises(ValidationError) as refused:
        event_adapter.validate_python(call)
    assert [e["loc"][-1] for e in refused.value.errors()] == ["caller"]
    assert event_adapter.validate_python(call | {"caller": "+8613947998566"}).caller == "+8613947998566"
