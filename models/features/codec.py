"""A compact, type-directed codec for the feature state (PersonState, AccountState): dataclasses become
lists of their fields in order, so a snapshot holds plain JSON values, never code to run on load.

The decoder follows the dataclasses' type hints, and `layout(cls)` fingerprints those hints: state written
by code whose classes had other fields or types is refused instead of being read into the wrong slots.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def encode(value: Any) -> Any:
    """Plain JSON values for a state object (dataclasses, deques, dicts, counters, numbers, strings)."""
    cls: Any = type(value)
    return _encoder(cls)(value)


Encoder = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _float(value: Any) -> Any:
    # JSON has no infinity: "-inf" is read back by float(). (x - x is 0 exactly for a finite x.)
    return value if value - value == 0 else str(value)


def _floats(values: Any) -> Any:
    # One C-speed sum tells whether any element needs the slow path (a window holds thousands).
    total = sum(values)
    return list(values) if total - total == 0 else [_float(v) for v in values]


def _dataclass_encoder(cls: type) -> Encoder:
    # Generated, as the dataclasses module writes __init__: one list display of the fields, each read
    # directly and encoded only if its type needs it, with no per-field loop. The source holds nothing but
    # the class's own field names.
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    encoders = {f"e{i}": _encoder(hints[name]) for i, name in enumerate(names)}
    items = ", ".join(
        f"v.{name}" if encoders[f"e{i}"] is _same else f"e{i}(v.{name})" for i, name in enumerate(names)
    )
    namespace: dict[str, Any] = dict(encoders)
    exec(f"def encode(v):\n    return [{items}]", namespace)  # noqa: S102 - see above
    return typing.cast(Encoder, namespace["encode"])


@cache
def _encoder(tp: Any) -> Encoder:
    """The encoder of a type, built once from its hints: a snapshot encodes a few hundred thousand
    entities, so no value is asked what it is while encoding (as a generic walk would)."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_encoder(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = _encoder(next(a for a in args if a is not type(None)))
        return _same if inner is _same else lambda value: None if value is None else inner(value)
    if origin in (list, tuple, collections.deque):
        item = _encoder(args[0])
        if item is _float:
            return _floats
        if item is _same:
            return _same if origin is list else list
        return lambda values: [item(v) for v in values]
    if origin in (dict, collections.Counter):
        value_encoder = _encoder(args[-1]) if origin is dict else _same
        if value_encoder is _same:
            return _same
        return lambda mapping: {k: value_encoder(v) for k, v in mapping.items()}
    if tp is float:
        return _float
    if tp in (int, str, bool):
        return _same
    raise TypeError(f"no encoding for {tp!r}")


def decode(cls: type[T], data: Any) -> T:
    """The inverse of `encode` for a value of type `cls`."""
    return typing.cast(T, _decoder(typing.cast(Any, cls))(data))


Decoder = Callable[[Any], Any]


def _number_list(values: Any) -> Any:
    # Numbers as read (the C-speed sum raises on a string: "-inf" and the like take the slow path).
    try:
        sum(values)
    except TypeError:
        return [float(v) for v in values]
    return values


def _dataclass_decoder(cls: type) -> Decoder:
    # Generated, as the encoder is: one call of the class with each field read from its slot and decoded
    # only if its type needs it. A restore decodes a partition's whole state while its partitions wait
    # (a walk asking each type what it is took a millisecond a person). The source holds nothing but the
    # class's own field names.
    hints = _hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    decoders = {f"d{i}": _decoder(hints[f.name]) for i, f in enumerate(fields)}
    args = ", ".join(
        f"{f.name}=v[{i}]" if decoders[f"d{i}"] is _same else f"{f.name}=d{i}(v[{i}])"
        for i, f in enumerate(fields)
    )
    namespace: dict[str, Any] = dict(decoders, cls=cls, ValueError=ValueError)
    exec(  # noqa: S102 - see above
        f"def decode(v):\n"
        f"    if len(v) != {len(fields)}:\n"
        f"        raise ValueError(f'{cls.__name__}: {{len(v)}} values for {len(fields)} fields')\n"
        f"    return cls({args})",
        namespace,
    )
    return typing.cast(Decoder, namespace["decode"])


@cache
def _decoder(tp: Any) -> Decoder:
    """The decoder of a type, built once from its hints (see `_encoder`)."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_decoder(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = _decoder(next(a for a in args if a is not type(None)))
        return lambda value: None if value is None else inner(value)
    if origin is collections.deque:
        item = _decoder(args[0])
        return collections.deque if item is _same else lambda values: collections.deque(map(item, values))
    if origin is collections.Counter:
        return lambda counts: collections.Counter({k: int(v) for k, v in counts.items()})
    if origin is dict:
        value_decoder = _decoder(args[1])
        if value_decoder is _same:
            return dict
        return lambda mapping: {k: value_decoder(v) for k, v in mapping.items()}
    if origin is list:
        item = _decoder(args[0])
        if item is float:
            return _number_list
        return list if item is _same else lambda values: [item(v) for v in values]
    if tp is float:
        return float
    if tp is str:
        return _same
    if tp in (int, bool):
        return typing.cast(Decoder, tp)
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
