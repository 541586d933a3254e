"""The edge rule every route shares: values no route can store are refused with 422 naming the field.

PostgreSQL refuses a NUL character in text, and a BIGINT holds 64 bits; Python and JSON take both, and a
date-time whose offset takes it past year 1 or 9999 in UTC, which the driver cannot convert; so without
this rule they travel down to the database and come back as a 500. The rule runs once per request,
before the route's own validation, on the query string, the path and a JSON body.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

from services.kit.errors import Unstorable

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INT = re.compile(r"[+-]?\d+")
# A JSON body can hold a NUL only escaped (and any escape may spell one, or a date's digits), an integer
# beyond 64 bits only as 19 digits or more, and a non-finite number only as Python's extensions to JSON;
# a body with none of them is not parsed twice.
_SUSPECT = re.compile(rb"\\u|\d{19}|NaN|Infinity|\"(0001|9999)-")
# Only a date-time in the first or the last year Python holds can leave its range once converted to UTC,
# as the driver does to store it ("0001-01-01T00:00:00+01:00").
_EDGE_YEAR = re.compile(r"\s*(0001|9999)-")


UNSTORABLE = "request has values that cannot be stored"
OUT_OF_RANGE = "date-time out of range once converted to UTC"
# No route takes a body nested more than a few levels; a deeper one is refused here rather than walked (or
# parsed) until Python's recursion limit, which would end the request in a 500.
MAX_DEPTH = 32
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"


def _problem(field: str, reason: str) -> dict[str, str]:
    return {"field": field, "reason": reason}


def _beyond_utc(text: str) -> bool:
    if not _EDGE_YEAR.match(text):
        return False
    try:
        datetime.fromisoformat(text.strip()).astimezone(UTC)
    except ValueError:
        return False  # not a date-time: the route's own validation says what it is
    except OverflowError:
        return True
    return False


def _walk(value: Any, path: str, found: list[dict[str, str]], depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        found.append(_problem(path, TOO_DEEP))
    elif isinstance(value, str):
        if "\x00" in value:
            found.append(_problem(path, "must not contain a NUL character"))
        elif _beyond_utc(value):
            found.append(_problem(path, OUT_OF_RANGE))
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            found.append(_problem(path, "integer beyond 64 bits"))
    elif isinstance(value, float):
        if not math.isfinite(value):
            found.append(_problem(path, "number must be finite"))
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                found.append(_problem(path, "a key must not contain a NUL character"))
            _walk(item, f"{path}.{key}", found, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}.{index}", found, depth + 1)


def body_problems(body: bytes) -> list[dict[str, str]]:
    """What no route can store in a JSON body (an empty list for a body that is not JSON: the route
    answers that itself)."""
    if not _SUSPECT.search(body):
        return []
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    except RecursionError:
        return [_problem("body", TOO_DEEP)]
    found: list[dict[str, str]] = []
    _walk(doc, "body", found)
    return found


def _takes(annotation: Any, kind: type) -> bool:
    if annotation is kind:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (typing.Union, list, set):
        return any(_takes(arg, kind) for arg in typing.get_args(annotation))
    return False


def _parameter_problems(request: Request) -> list[dict[str, str]]:
    route = request.scope.get("route")
    ints: set[tuple[str, str]] = set()
    if isinstance(route, APIRoute):
        for where, params in (("query", route.dependant.query_params), ("path", route.dependant.path_params)):
            for param in params:
                if _takes(param.field_info.annotation, int):
                    ints.add((where, param.alias))
    found: list[dict[str, str]] = []
    given = (("query", request.query_params.multi_items()), ("path", list(request.path_params.items())))
    for where, items in given:
        for name, value in items:
            if "\x00" in value or "\x00" in name:
                found.append(_problem(f"{where}.{name}", "must not contain a NUL character"))
            elif (where, name) in ints and _INT.fullmatch(value.strip()):
                if not INT64_MIN <= int(value) <= INT64_MAX:
                    found.append(_problem(f"{where}.{name}", "integer beyond 64 bits"))
            elif _beyond_utc(value):
                found.append(_problem(f"{where}.{name}", OUT_OF_RANGE))
    return found


def sent_as_json(request: Request) -> bool:
    """Whether a body may be read as JSON: sent as a JSON type, or with no Content-Type (ingest reads such
    a body; a route with a body model answers 415 for it itself). One of another type is answered 415."""
    return "json" in request.headers.get("content-type", "json").lower()


async def refuse_unstorable(request: Request) -> None:
    """App-wide dependency: NUL characters anywhere, integers beyond 64 bits, non-finite numbers → 422."""
    found = _parameter_problems(request)
    if request.method in ("POST", "PUT", "PATCH") and sent_as_json(request):
        found += body_problems(await request.body())
    if found:
        raise Unstorable(UNSTORABLE, details=found)
