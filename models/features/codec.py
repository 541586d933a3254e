"""A compact, type-directed codec for the feature state (PersonState, AccountState): dataclasses become
lists of their fields in order, so a snapshot holds plain JSON values, never code to run on load.

The decoder follows the dataclasses' type hints, and `layout(cls)` fingerprints those hints: state written
by code whose classes had other fields or types is refused instead of being read into the wrong slots.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def encode(value: Any) -> Any:
    """Plain JSON values for a state object (dataclasses, deques, dicts, counters, numbers, strings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [encode(getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no infinity; "-inf" is read back by float()
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | collections.deque):
        return [encode(v) for v in value]
    return value


def decode(cls: type[T], data: Any) -> T:
    """The inverse of `encode` for a value of type `cls`."""
    return typing.cast(T, _decode(cls, data))


def _decode(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = _hints(tp)
        fields = [f for f in dataclasses.fields(tp) if f.init]
        if len(fields) != len(data):
            raise ValueError(f"{tp.__name__}: {len(data)} values for {len(fields)} fields")
        return tp(**{f.name: _decode(hints[f.name], v) for f, v in zip(fields, data, strict=True)})
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _decode(inner[0], data)
    if origin is collections.deque:
        return collections.deque(_decode(args[0], v) for v in data)
    if origin is collections.Counter:
        return collections.Counter({k: int(v) for k, v in data.items()})
    if origin is dict:
        return {k: _decode(args[1], v) for k, v in data.items()}
    if origin is list:
        return [_decode(args[0], v) for v in data]
    if tp is float:
        return float(data)
    if tp in (int, str, bool):
        return tp(data)
    raise TypeError(f"no decoding for {tp!r}")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def layout(*classes: type) -> str:
    """A fingerprint of the classes' fields and types, nested dataclasses included."""
    seen: dict[str, str] = {}

    def walk(tp: Any) -> None:
        if dataclasses.is_dataclass(tp) and isinstance(tp, type) and tp.__qualname__ not in seen:
            hints = _hints(tp)
            seen[tp.__qualname__] = ",".join(f"{f.name}:{hints[f.name]!r}" for f in dataclasses.fields(tp))
            for f in dataclasses.fields(tp):
                walk(hints[f.name])
        for arg in typing.get_args(tp):
            walk(arg)

    for cls in classes:
        walk(cls)
    text = ";".join(f"{k}={v}" for k, v in sorted(seen.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
