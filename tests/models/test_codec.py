"""The snapshot codec: simulated people and accounts come back equal, and the encoding keeps the written
format (dataclasses as lists of their fields in order, non-finite floats as strings), so snapshots taken by
an earlier version still load."""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any

import orjson
import pytest

from models.features.account import AccountState
from models.features.codec import decode, encode
from models.features.person import PayeeSeen, PersonState
from models.features.windows import Window
from models.training.dataset import Replay
from services.simulator.offline import OfflineConfig, Truth, generate


def written_format(value: Any) -> Any:
    """The format as first written: a walk asking each value what it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [written_format(getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: written_format(v) for k, v in value.items()}
    if isinstance(value, list | tuple | collections.deque):
        return [written_format(v) for v in value]
    return value


@pytest.fixture(scope="module")
def replay() -> Replay:
    replay = Replay()
    for reported_at, sim in generate(
        OfflineConfig(population=300, days=1.0, scams_per_day=20, seed=5), Truth()
    ):
        replay.event(reported_at, sim)
    return replay


def test_simulated_state_keeps_its_format_and_comes_back_equal(replay: Replay):
    assert len(replay.people) > 200 and len(replay.accounts) > 200
    busy = max(replay.people.values(), key=lambda p: len(p.calls) + len(p.outs))
    assert busy.calls and busy.outs and busy.payees and busy.to_payee_24h  # every kind of book is covered
    for cls, states in ((PersonState, replay.people), (AccountState, replay.accounts)):
        for state in states.values():
            encoded = encode(state)
            assert encoded == written_format(state)
            assert decode(cls, orjson.loads(orjson.dumps(encoded))) == state


def test_non_finite_floats_and_absent_values_survive():
    person = PersonState()
    assert person.outs_10m.newest == float("-inf") and person.first_seen is None
    window = Window(60.0, amounts=[1.0, float("inf")], times=[1.0, 2.0], keys=["a", "b"], total=float("inf"))
    for cls, state in ((PersonState, person), (Window, window)):
        encoded = encode(state)
        assert encoded == written_format(state)
        again = orjson.loads(orjson.dumps(encoded))
        assert b'"-inf"' in orjson.dumps(again)
        assert decode(cls, again) == state


def test_state_of_another_shape_is_refused_not_read_into_the_wrong_slots():
    encoded = orjson.loads(orjson.dumps(encode(PersonState())))
    with pytest.raises(ValueError, match="PersonState: .* values for"):
        decode(PersonState, encoded[:-1])
    person = PersonState(payees={"x/1": PayeeSeen(first=1.0, count=2, times=[1.0], amounts=[10.0])})
    nested = orjson.loads(orjson.dumps(encode(person)))
    nested[[f.name for f in dataclasses.fields(PersonState)].index("payees")]["x/1"].append(1.0)
    with pytest.raises(ValueError, match="PayeeSeen: 5 values for 4 fields"):
        decode(PersonState, nested)
