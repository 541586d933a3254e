"""The published event schema says what the code does: an amount is a decimal string over 0 with at most
two places; the code accepts exactly the strings the schema's pattern accepts, and no JSON number."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from streams.schemas.events import Amount, json_schemas

amount: TypeAdapter[object] = TypeAdapter(Amount)
PATTERN = re.compile(amount.json_schema()["pattern"])
TEXTS = [
    "48000.00",
    "0.01",
    "0.10",
    "0.1",
    "1",
    "999999999999.99",  # accepted
    "0",
    "0.00",
    "0.0",
    "-1",
    "-0",
    "01",
    "00.1",
    "1.234",
    "1e3",
    "1E+3",
    " 1",
    "1,000.00",
    "1000000000000",
    "12345678901234",
    "NaN",
    "Infinity",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_the_code_accepts_exactly_what_the_schema_pattern_accepts(text: str):
    try:
        amount.validate_python(text)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == bool(PATTERN.fullmatch(text))


@pytest.mark.parametrize("number", [48000, 48000.0, 0.1])
def test_a_json_number_is_refused(number: float):
    with pytest.raises(ValidationError, match="not a JSON number"):
        amount.validate_json(str(number))


def test_every_published_amount_is_a_string():
    transfer = json_schemas()["bank.transfer"]
    assert transfer["properties"]["amount"]["type"] == "string"
