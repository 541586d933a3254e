"""Every route checks role and ownership: no credentials → 401, a role that may not → 403, another
unit's case or instruction → 404, another institution's instruction → 404."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests import factories as f
from tests.coordination.conftest import bank, case_body, issue, open_case

pytestmark = pytest.mark.integration

ALL = {"operator", "supervisor", "auditor"}
WORK = {"operator", "supervisor"}


def officer_routes(case: str, ins: str, inst: str) -> list[tuple[str, str, Any, set[str], bool]]:
    """(method, path, body, roles allowed, owned by a unit)."""
    query = {"kind": "query", "institution_id": inst, "account": f.account()}
    return [
        ("POST", "/v1/cases", case_body(), WORK, False),
        ("GET", "/v1/cases", None, ALL, False),
        ("GET", f"/v1/cases/{case}", None, ALL, True),
        ("PATCH", f"/v1/cases/{case}", {"assignee": "someone"}, WORK, True),
        ("POST", f"/v1/cases/{case}/notes", {"text": "called the victim"}, WORK, True),
        ("POST", f"/v1/cases/{case}/alerts", {"alert_id": str(uuid.uuid4())}, WORK, True),
        ("GET", f"/v1/cases/{case}/flow", None, ALL, True),
        ("GET", f"/v1/cases/{case}/proposals", None, ALL, True),
        ("POST", f"/v1/cases/{case}/proposals/accept", {}, WORK, True),
        ("POST", f"/v1/cases/{case}/instructions", query, WORK, True),
        ("GET", f"/v1/cases/{case}/instructions", None, ALL, True),
        ("GET", "/v1/instructions", None, ALL, False),
        ("GET", f"/v1/instructions/{ins}", None, ALL, True),
        ("GET", f"/v1/instructions/{ins}/responses", None, ALL, True),
        ("POST", f"/v1/instructions/{ins}/approve", None, {"supervisor"}, True),
        ("POST", f"/v1/instructions/{ins}/decline", {}, {"supervisor"}, True),
        ("POST", f"/v1/instructions/{ins}/cancel", None, WORK, True),
        ("GET", "/v1/incidents", None, ALL, False),
        ("GET", "/v1/incidents/0123456789abcdef0123", None, ALL, False),
        ("POST", "/v1/incidents/0123456789abcdef0123/status", {"status": "triaged"}, WORK, False),
        ("GET", "/v1/dashboard", None, ALL, False),
        ("GET", f"/v1/cases/{case}/timeline", None, ALL, True),
        ("GET", "/v1/institutions", None, ALL, False),
        ("GET", "/v1/audit", None, {"auditor"}, False),
        ("GET", "/v1/audit/verify", None, {"auditor"}, False),
    ]


async def test_officer_routes_check_role_and_unit(coord, sessions):
    c = coord.client
    inst, key, _ = await bank(sessions)
    owner = f.officer(unit="owner-unit")
    case = await open_case(c, owner, (inst, f.account("MULE"), "100.00"))
    freeze = await issue(
        c,
        owner,
        case,
        kind="freeze",
        institution_id=inst,
        account=f.account("MULE"),
        amount="100.00",
        document_number="D-1",
    )
    for method, path, body, allowed, owned in officer_routes(case, freeze["id"], inst):
        anonymous = await c.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, path)
        as_bank = await c.request(method, path, json=body, headers=key)
        assert as_bank.status_code == 401, (method, path)  # an API key is not an officer's token
        for role in ALL - allowed:
            denied = await c.request(method, path, json=body, headers=f.officer(role, unit="owner-unit"))
            assert denied.status_code == 403, (method, path, role, denied.text)
        if owned:
            role = sorted(allowed - {"auditor"})[0] if allowed - {"auditor"} else "auditor"
            if role != "auditor":
                stranger = await c.request(
                    method, path, json=body, headers=f.officer(role, unit="other-unit")
                )
                assert stranger.status_code == 404, (method, path, role, stranger.text)


async def test_an_officer_named_with_a_control_character_is_refused_before_any_write(coord):
    """Such a token answered 500 on every write (PostgreSQL refused the NUL in the name it was signed
    with); now 401 before the route, and the case it would have opened does not exist."""
    c = coord.client
    for sub, unit in (("nul\x00guy", "changji-psb"), ("officer", "u\x001"), ("line\nbreak", "changji-psb")):
        body = case_body()
        refused = await c.post("/v1/cases", json=body, headers=f.officer(sub=sub, unit=unit))
        assert refused.status_code == 401, refused.text
        assert "printable" in refused.json()["error"]["message"]
        listed = await c.get("/v1/cases", headers=f.officer("supervisor", unit="changji-psb"))
        assert listed.status_code == 200
        assert body["case_number"] not in {case["case_number"] for case in listed.json()}


async def test_a_credential_on_the_wrong_kind_of_route_is_told_so(coord, sessions):
    """An outside trial got "missing API key" for an officer's token on an institution's route, and "Not
    enough segments" for a key on an officer's: the refusal says what was sent instead."""
    c = coord.client
    _, key, _ = await bank(sessions)
    as_officer = await c.get("/v1/cases", headers=key)
    assert as_officer.status_code == 401
    assert as_officer.json()["error"]["message"].startswith("not an officer's token")
    for credential, says in ((f.officer(), "not an institution's API key"), ({}, "missing API key")):
        as_bank = await c.get("/v1/institution/instructions", headers=credential)
        assert as_bank.status_code == 401 and as_bank.json()["error"]["message"].startswith(says)


async def test_institution_routes_check_the_addressee(coord, sessions):
    c = coord.client
    inst, key, _ = await bank(sessions)
    _, other_key, _ = await bank(sessions)
    _, telecom_key = await f.institution(sessions, "telecom")
    op = f.officer()
    case = await open_case(c, op, (inst, f.account("MULE"), "100.00"))
    query = await issue(c, op, case, kind="query", institution_id=inst, account=f.account("MULE"))
    answer = {"response_id": str(uuid.uuid4()), "outcome": "acknowledged"}
    routes = [
        ("GET", "/v1/institution/instructions", None),
        ("GET", f"/v1/institution/instructions/{query['id']}", None),
        ("POST", f"/v1/institution/instructions/{query['id']}/responses", answer),
    ]
    for method, path, body in routes:
        assert (await c.request(method, path, json=body)).status_code == 401
        assert (await c.request(method, path, json=body, headers=op)).status_code == 401
        assert (await c.request(method, path, json=body, headers=telecom_key)).status_code == 403
    assert (await c.get(routes[1][1], headers=other_key)).status_code == 404
    assert (await c.post(routes[2][1], json=answer, headers=other_key)).status_code == 404
    mine = (await c.get(routes[0][1], headers=key)).json()["items"]
    theirs = (await c.get(routes[0][1], headers=other_key)).json()["items"]
    assert [m["message"]["instruction_id"] for m in mine] == [query["id"]] and theirs == []
    assert (await c.post(routes[2][1], json=answer, headers=key)).status_code == 200

    # A freeze awaiting approval has not been sent: the bank does not see it.
    freeze = await issue(
        c,
        op,
        case,
        kind="freeze",
        institution_id=inst,
        account=f.account("MULE"),
        amount="10.00",
        document_number="D-2",
    )
    assert (await c.get(f"/v1/institution/instructions/{freeze['id']}", headers=key)).status_code == 404
