"""Checking a batch: parse it, validate every event, check the sender may send it (services.ingest.claims
then claims, produces and settles it).

A batch is all or nothing: one bad event rejects the whole batch and nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from services.ingest import metrics
from services.ingest.claims import BatchResult
from services.institutions.credentials import Caller
from services.institutions.directory import Directory
from services.kit.errors import Conflict, Forbidden, InvalidInput, Unstorable
from streams.schemas.event_time import EventTimeBounds
from streams.schemas.events import EventBase, event_adapter


def parse_batch(body: bytes, *, max_events: int) -> list[Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("body is not valid JSON", details=[{"field": "body", "reason": str(exc)}]) from exc
    return batch_events(doc, max_events=max_events)


def batch_events(doc: Any, *, max_events: int) -> list[Any]:
    """The events of a parsed body, if it is a batch."""
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise InvalidInput(
            "body must be an object with a list `events`",
            details=[{"field": "events", "reason": "missing or not a list"}],
        )
    if extra := sorted(set(doc) - {"events"}):
        raise InvalidInput(
            "body has fields a batch does not have",
            details=[{"field": name, "reason": "a batch has only `events`"} for name in extra],
        )
    events: list[Any] = doc["events"]
    if not events:
        raise InvalidInput("batch is empty", details=[{"field": "events", "reason": "at least one event"}])
    if len(events) > max_events:
        raise InvalidInput(
            f"batch has {len(events)} events; at most {max_events}",
            details=[{"field": "events", "reason": f"at most {max_events} events"}],
        )
    return events


def unstorable_batch(refused: Unstorable, body: bytes, *, max_events: int) -> tuple[Unstorable, int]:
    """The edge rule's refusal of a batch (`body.events.3.amount`) said as every other problem of a batch
    is (the event's index and id, and its field), and how many events it refused."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None  # a NaN or an integer beyond 64 bits, which orjson does not read: no ids then
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        events = []
    details: list[dict[str, Any]] = []
    for problem in refused.details or []:
        path = str(problem["field"]).split(".")
        if len(path) > 2 and path[:2] == ["body", "events"] and path[2].isdigit():
            index = int(path[2])
            item = events[index] if index < len(events) else None
            event_id = item.get("event_id") if isinstance(item, dict) else None
            field = ".".join(path[3:]) or "event"
            problem = {"index": index, "event_id": event_id, "field": field, "reason": problem["reason"]}
        details.append(problem)
    try:  # counted as the route counts a refused batch: its events, or one if it is not a batch
        refused_events = len(batch_events(doc, max_events=max_events))
    except InvalidInput:
        refused_events = 1
    return Unstorable(refused.message, details=details), refused_events


def validate_events(
    raw: Sequence[Any], *, bounds: EventTimeBounds, now: float | None = None
) -> list[EventBase]:
    """Validate every event and report every problem at once, each with its index and event id. Counted
    as refused by the caller: a posted batch's every event, an intake record once."""
    now = time.time() if now is None else now
    events: list[EventBase] = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        event_id = item.get("event_id") if isinstance(item, dict) else None
        try:
            event = event_adapter.validate_python(item)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                # Drop the union tag pydantic puts first in the location of a discriminated union.
                loc = [str(p) for p in err["loc"]]
                if isinstance(item, dict) and loc and loc[0] == item.get("type"):
                    loc = loc[1:]
                if err["type"] in ("union_tag_not_found", "union_tag_invalid"):  # no or no known `type`
                    loc = ["type"]
                problems.append(
                    {
                        "index": index,
                        "event_id": event_id,
                        "field": ".".join(loc) or "event",
                        "reason": err["msg"],
                    }
                )
            continue
        if (late_or_early := bounds.problem(event.occurred_at, now=now)) is not None:
            problems.append(
                {"index": index, "event_id": event.event_id, "field": "occurred_at", "reason": late_or_early}
            )
            continue
        if event.event_id in seen:
            problems.append(
                {
                    "index": index,
                    "event_id": event.event_id,
                    "field": "event_id",
                    "reason": f"repeats the event_id of event {seen[event.event_id]} in this batch",
                }
            )
            continue
        seen[event.event_id] = index
        events.append(event)
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in the batch; nothing was accepted", details=problems)
    return events


def check_kinds(caller: Caller, events: Sequence[EventBase]) -> None:
    wrong = [
        {
            "index": i,
            "event_id": e.event_id,
            "field": "type",
            "reason": f"a {caller.kind} may not send {e.type}",
        }
        for i, e in enumerate(events)
        if e.source != caller.kind
    ]
    if wrong:
        metrics.REJECTED.labels(caller.kind, "forbidden_kind").inc(len(events))
        raise Forbidden(f"{caller.institution_id} may send only {caller.kind} events", details=wrong)


async def unknown_payees(directory: Directory, events: Sequence[EventBase]) -> set[str]:
    """The payee institutions the events name that are no Stopline institution (asked before the events
    are accepted: a database outage then refuses the batch, rather than failing after it was sent)."""
    return await directory.unknown(p for e in events if (p := getattr(e, "payee_institution", None)))


def count_unknown_payees(
    caller: Caller, events: Sequence[EventBase], unknown: set[str], result: BatchResult
) -> None:
    """Count the accepted events (not the duplicates) naming a payee institution of `unknown`: accepted,
    since a payee bank outside Stopline is legitimate, but a member named another way is a mistake."""
    if result.conflicts or not unknown:
        return
    repeats = set(result.duplicates)
    count = sum(getattr(e, "payee_institution", None) in unknown for e in events if e.event_id not in repeats)
    if count:
        metrics.UNKNOWN_PAYEE_INSTITUTION.labels(caller.institution_id).inc(count)


REUSED_ID = "this event_id was accepted before for other content; a corrected event takes a new event_id"


def refuse_conflicts(caller: Caller, events: Sequence[EventBase], conflicts: Sequence[str]) -> None:
    """The batch is refused when an id in it was accepted before for other content (nothing was claimed)."""
    if not conflicts:
        return
    index = {e.event_id: i for i, e in enumerate(events)}
    metrics.REJECTED.labels(caller.kind, "conflict").inc(len(events))
    raise Conflict(
        f"{len(conflicts)} event id(s) accepted before for other content; nothing was accepted",
        details=[
            {"index": index[i], "event_id": i, "field": "event_id", "reason": REUSED_ID} for i in conflicts
        ],
    )
