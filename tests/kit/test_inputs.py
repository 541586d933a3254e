"""The kit's input rule on the real services: a NUL character or an integer beyond 64 bits is a 422 naming
the field (it used to travel to PostgreSQL and come back as a 500), and nothing is written."""

from __future__ import annotations

import json
import typing
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, NaiveDatetime

from services.kit.inputs import MAX_DEPTH, TOO_DEEP, body_problems
from streams.schemas.events import BLANK, NOT_A_NUMBER, Instant
from tests import factories as f
from tests.coordination.conftest import bank, case_body, issue, open_case, respond
from tests.kit.test_openapi import _apps
from tests.metrics import sample

pytestmark = pytest.mark.integration
TOO_BIG = 2**63


def _fields(response) -> set[str]:
    assert response.status_code == 422, response.text
    return {d["field"] for d in response.json()["error"]["details"]}


async def test_a_nul_in_a_case_title_is_refused_and_nothing_is_written(coordination):
    case = case_body(title="scam\x00call")
    r = await coordination.post("/v1/cases", json=case, headers=f.officer())
    assert _fields(r) == {"body.title"}
    listed = await coordination.get("/v1/cases", headers=f.officer())
    assert case["case_number"] not in {c["case_number"] for c in listed.json()}


async def test_a_nul_in_a_query_parameter_is_refused(coordination):
    r = await coordination.get("/v1/cases", params={"status": "open\x00"}, headers=f.officer())
    assert _fields(r) == {"query.status"}


async def test_an_integer_beyond_64_bits_in_the_query_is_refused(blocklist, sessions):
    _, telecom = await f.institution(sessions, "telecom")
    r = await blocklist.get("/v1/blocklist", params={"since": str(TOO_BIG)}, headers=telecom)
    assert _fields(r) == {"query.since"}
    assert (await blocklist.get("/v1/blocklist", params={"since": "0"}, headers=telecom)).status_code == 200


async def test_a_nul_in_a_blocklist_note_is_refused(blocklist, sessions):
    _, telecom = await f.institution(sessions, "telecom")
    r = await blocklist.post(
        "/v1/blocklist/reports", json={"number": f.phone(), "note": "\x00"}, headers=telecom
    )
    assert _fields(r) == {"body.note"}


async def test_a_nul_in_an_event_names_the_event_and_counts_the_batch_refused(ingest, sessions):
    """As every other problem of a batch: the event's index and id, and its field (integration.md); and
    the batch's events counted as refused, though before its sender is known (the rule runs first)."""
    _, telecom = await f.institution(sessions, "telecom")
    good = f.call(f.phone(), start=f.minutes_ago(1), minutes=1)
    bad = {**f.call(f.phone(), start=f.minutes_ago(1), minutes=1), "caller": "+86138\x000000000"}
    refused = {"source": "unknown", "reason": "invalid"}
    before = await sample(ingest, "stopline_ingest_rejected_total", **refused)
    r = await ingest.post("/v1/events", json={"events": [good, bad]}, headers=telecom)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"] == [
        {
            "index": 1,
            "event_id": bad["event_id"],
            "field": "caller",
            "reason": "must not contain a NUL character",
        }
    ]
    assert await sample(ingest, "stopline_ingest_rejected_total", **refused) == before + 2
    # The same body as another content type is not read as JSON at all (it was, and the NUL went on).
    as_text = {**telecom, "Content-Type": "text/plain"}
    r = await ingest.post("/v1/events", content=json.dumps({"events": [good, bad]}), headers=as_text)
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type", r.text
    r = await ingest.post("/v1/events", json={"events": [good]}, headers=telecom)
    assert r.json() == {"accepted": 1, "duplicates": []}  # nothing of the refused batches was taken


def test_body_rule_finds_every_unstorable_value_and_nothing_else():
    assert body_problems(b'{"a": [1, 2], "b": "6222021234567890123"}') == []  # a 19-digit account is text
    found = body_problems(
        b'{"ids": [1, 18446744073709551615], "n": -9223372036854775809, "x": NaN, "s": {"k\\u0000": 1}}'
    )
    assert {p["field"] for p in found} == {"body.ids.1", "body.n", "body.x", "body.s"}
    assert body_problems(b"not json \\u0000") == []  # the route reports bad JSON itself


async def test_the_rule_holds_whatever_the_case_of_the_content_type(coordination):
    """FastAPI parses "Application/JSON" as JSON too: the rule must look at it as well."""
    case = case_body(title="scam\x00call")
    headers = {**f.officer(), "Content-Type": "Application/JSON"}
    r = await coordination.post("/v1/cases", content=json.dumps(case), headers=headers)
    assert _fields(r) == {"body.title"}


async def test_a_date_time_beyond_year_9999_in_utc_is_refused(coordination):
    """It exists with its offset, not in UTC, where the driver converts it to store or compare it."""
    case = case_body(lost_at="0001-01-01T00:00:00+01:00")
    r = await coordination.post("/v1/cases", json=case, headers=f.officer())
    assert _fields(r) == {"body.lost_at"}
    r = await coordination.get(
        "/v1/alerts", params={"since": "9999-12-31T23:59:59-01:00"}, headers=f.officer()
    )
    assert _fields(r) == {"query.since"}
    fine = await coordination.get(
        "/v1/alerts", params={"since": "0001-01-01T00:00:00-01:00"}, headers=f.officer()
    )
    assert fine.status_code == 200, fine.text


def test_body_rule_finds_date_times_out_of_range_in_utc_only():
    found = body_problems(b'{"a": {"at": "9999-12-31T23:00:00-02:00"}, "b": "9999-12-31T23:00:00+02:00"}')
    assert [p["field"] for p in found] == ["body.a.at"]
    assert body_problems(b'{"n": "0001-01-01 and more text"}') == []


async def test_proposal_ids_are_bounded_as_the_column_and_the_request_are(coordination):
    """`flow_proposals.id` is an INTEGER: a larger id is refused here, not by PostgreSQL as a 500."""
    url = f"/v1/cases/{uuid.uuid4()}/proposals/accept"
    r = await coordination.post(url, json={"proposal_ids": [2**31]}, headers=f.officer())
    assert _fields(r) == {"body.proposal_ids.0"}
    r = await coordination.post(url, json={"proposal_ids": list(range(1, 502))}, headers=f.officer())
    assert _fields(r) == {"body.proposal_ids"}


def test_body_rule_refuses_a_body_nested_too_deep_to_walk():
    assert body_problems(b'{"a": [[["\\u0041"]]]}') == []
    for depth in (MAX_DEPTH + 1, 5_000):  # past the walk's bound; past Python's recursion limit
        body = b'{"s": "\\u0041", "a": ' + b"[" * depth + b"]" * depth + b"}"
        assert [p["reason"] for p in body_problems(body)] == [TOO_DEEP]


def _problems(response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {d["field"]: d["reason"] for d in response.json()["error"]["details"]}


NAIVE = "2026-12-07T00:00:00"


@pytest.mark.parametrize("number", [1796628300, 1796628300.5, "1796628300", "1.7966283e9", ".5"])
async def test_a_date_time_in_a_body_is_never_a_bare_number(coordination, sessions, number):
    """Pydantic would read it as Unix time, as events and query strings refuse to."""
    case = case_body(lost_at=number)
    r = await coordination.post("/v1/cases", json=case, headers=f.officer())
    assert _problems(r) == {"body.lost_at": NOT_A_NUMBER}

    op = f.officer()
    inst, key, _ = await bank(sessions)
    case_id = await open_case(coordination, op, (inst, f.account("M"), "100.00"))
    query = await issue(coordination, op, case_id, kind="query", institution_id=inst, account=f.account("M"))
    r = await respond(coordination, key, query["id"], "acknowledged", responded_at=number)
    assert _problems(r) == {"body.responded_at": NOT_A_NUMBER}
    status = (await coordination.get(f"/v1/instructions/{query['id']}", headers=op)).json()["status"]
    assert status in ("issued", "delivered")


async def test_a_date_time_in_a_query_string_is_refused_as_in_a_body(coordination):
    """Naive or a bare number, a time in a query string has the same answer as the same time in a body."""
    in_body = _problems(
        await coordination.post("/v1/cases", json=case_body(lost_at=NAIVE), headers=f.officer())
    )
    for route in ("/v1/alerts", "/v1/audit", "/v1/dashboard"):
        r = await coordination.get(route, params={"since": NAIVE}, headers=f.officer("auditor"))
        assert _problems(r) == {"query.since": in_body["body.lost_at"]}, route
        for number in ("1796628300", "1.7966283e9", "179662830.0e1", "-.5"):
            r = await coordination.get(route, params={"since": number}, headers=f.officer("auditor"))
            assert _problems(r) == {"query.since": NOT_A_NUMBER}, (route, number)
    r = await coordination.get("/v1/cases", params={"before": NAIVE}, headers=f.officer())
    assert _problems(r) == {"query.before": in_body["body.lost_at"]}


# What makes a time `Instant`: the same validator object wherever the type is used.
_GUARD = typing.get_args(Instant)[1]


def _unguarded(annotation: Any, guarded: bool, seen: set[type]) -> list[str]:
    """Where in `annotation` a date-time is taken without `Instant`'s refusal of a bare number."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        return _unguarded(base, guarded or any(m is _GUARD for m in extras), seen)
    if annotation in (datetime, AwareDatetime, NaiveDatetime):
        return [] if guarded else ["<date-time>"]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return []
        seen.add(annotation)
        return [
            f"{annotation.__name__}.{name}"
            for name, field in annotation.model_fields.items()
            if _unguarded(field.annotation, any(m is _GUARD for m in field.metadata), seen)
        ]
    return [where for arg in typing.get_args(annotation) for where in _unguarded(arg, guarded, seen)]


def test_every_date_time_a_route_takes_is_an_instant():
    """In a body, a query string or a path, of every service: with its time zone, never a bare number."""
    for service, app in _apps().items():
        for route in app.routes:
            if not isinstance(route, APIRoute):
                continue
            d = route.dependant
            for param in (*d.query_params, *d.path_params, *d.body_params):
                info = param.field_info
                guarded = any(m is _GUARD for m in info.metadata)
                assert not _unguarded(info.annotation, guarded, set()), (service, route.path, param.name)


@pytest.mark.parametrize("blank", ["   ", " \n\t"])
async def test_a_required_text_of_white_space_is_refused_as_an_empty_one(
    coordination, blocklist, sessions, blank
):
    op = f.officer()
    for field in ("title", "case_number"):
        r = await coordination.post("/v1/cases", json=case_body(**{field: blank}), headers=op)
        assert _problems(r) == {f"body.{field}": BLANK}
    _, telecom = await f.institution(sessions, "telecom")
    number = f.phone()
    r = await blocklist.post("/v1/blocklist/reports", json={"number": number, "note": blank}, headers=telecom)
    assert _problems(r) == {"body.note": BLANK}

    inst, key, _ = await bank(sessions)
    case_id = await open_case(coordination, op, (inst, f.account("M"), "100.00"))
    query = await issue(coordination, op, case_id, kind="query", institution_id=inst, account=f.account("M"))
    empty = _problems(await respond(coordination, key, query["id"], "rejected", reason=""))
    assert _problems(await respond(coordination, key, query["id"], "rejected", reason=blank)) == empty
    status = (await coordination.get(f"/v1/instructions/{query['id']}", headers=op)).json()["status"]
    assert status in ("issued", "delivered")


async def test_times_that_state_the_past_are_not_ahead_of_the_clock(coordination, sessions):
    """A loss, a payment and a query's start have happened: a year ahead is a wrong date, refused with the
    events' allowance for clocks' skew, and nothing is written nor issued."""
    op, next_year = f.officer(), f.iso(f.now() + timedelta(days=365))
    inst, _, _ = await bank(sessions)
    case = case_body((inst, f.account("M"), "100.00"), lost_at=next_year)
    r = await coordination.post("/v1/cases", json=case, headers=op)
    assert _problems(r) == {"body.lost_at": "more than 300 s in the future"}
    case = case_body((inst, f.account("M"), "100.00"))
    case["destinations"][0]["at"] = next_year
    r = await coordination.post("/v1/cases", json=case, headers=op)
    assert _problems(r) == {"body.destinations.0.at": "more than 300 s in the future"}
    listed = await coordination.get("/v1/cases", headers=op)
    assert case["case_number"] not in {c["case_number"] for c in listed.json()}

    case_id = await open_case(coordination, op, (inst, f.account("M"), "100.00"))
    query = {"kind": "query", "institution_id": inst, "account": f.account("M"), "since": next_year}
    r = await coordination.post(f"/v1/cases/{case_id}/instructions", json=query, headers=op)
    assert _problems(r) == {"body.since": "more than 300 s in the future"}
    issued = await coordination.get(f"/v1/cases/{case_id}", headers=op)
    assert issued.json()["instructions"] == []


async def test_every_refusal_names_its_field_where_it_was_given(coordination, sessions):
    """`body.`, `query.` or `path.` and the name, as pydantic's own refusals say it, with the reason."""
    op = f.officer()
    inst, key, _ = await bank(sessions)
    unknown = str(uuid.uuid4())
    r = await coordination.post("/v1/cases", json=case_body(source="alert", alert_ids=[unknown]), headers=op)
    assert _problems(r) == {"body.alert_ids.0": f"no alert {unknown}"}
    case_id = await open_case(coordination, op, (inst, f.account("M"), "100.00"))
    url = f"/v1/cases/{case_id}/instructions"
    stop = {"kind": "stop_payment", "institution_id": inst, "account": f.account("M")}
    assert set(_problems(await coordination.post(url, json=stop, headers=op))) == {"body.amount"}
    query = {"kind": "query", "institution_id": "tel-z", "account": f.account("M")}
    assert set(_problems(await coordination.post(url, json=query, headers=op))) == {"body.institution_id"}
    r = await coordination.get("/v1/instructions", params={"status": "bogus"}, headers=op)
    assert set(_problems(r)) == {"query.status"}
    r = await coordination.get("/v1/institution/instructions", params={"cursor": "bogus"}, headers=key)
    assert set(_problems(r)) == {"query.cursor"}
