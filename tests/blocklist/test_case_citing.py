"""A blocklist proposal may cite only a case of the proposer's own unit that was closed as confirmed fraud;
every other case id (another unit's, an open one, none at all) gets one and the same answer, so case ids
cannot be probed."""

from __future__ import annotations

import uuid

import pytest

from tests import factories as f
from tests.coordination.conftest import case_body

pytestmark = pytest.mark.integration
UNIT, OTHER_UNIT = "changji-psb", "urumqi-psb"


async def _case(coordination, *, confirmed: bool) -> str:
    me = f.officer(unit=UNIT)
    opened = await coordination.post("/v1/cases", json=case_body(), headers=me)
    assert opened.status_code == 201, opened.text
    case_id = str(opened.json()["id"])
    if confirmed:
        closing = {"status": "closed", "outcome": "confirmed_fraud"}
        closed = await coordination.patch(f"/v1/cases/{case_id}", json=closing, headers=me)
        assert closed.status_code == 200, closed.text
    return case_id


async def _propose(blocklist, case_id: str, unit: str):
    body = {"number": f.phone(), "category": "impersonation", "reason": "from the case", "case_id": case_id}
    return await blocklist.post("/v1/blocklist/proposals", json=body, headers=f.officer(unit=unit))


async def test_only_a_confirmed_case_of_the_own_unit_may_be_cited(coordination, blocklist):
    confirmed = await _case(coordination, confirmed=True)
    still_open = await _case(coordination, confirmed=False)

    cited = await _propose(blocklist, confirmed, UNIT)
    assert cited.status_code == 201, cited.text
    assert cited.json()["case_id"] == confirmed

    unknown = str(uuid.uuid4())
    tried = [(confirmed, OTHER_UNIT), (still_open, UNIT), (unknown, UNIT)]
    answers = [await _propose(blocklist, case_id, unit) for case_id, unit in tried]
    assert [r.status_code for r in answers] == [422, 422, 422]
    said = {
        (r.json()["error"]["message"].replace(case_id, "<case>"), str(r.json()["error"]["details"]))
        for r, (case_id, _) in zip(answers, tried, strict=True)
    }
    assert len(said) == 1  # the same answer for each: nothing tells them apart


async def test_a_proposal_joining_another_cases_entry_is_in_its_own_cases_trail(coordination, blocklist):
    """An auditor reading case B's trail finds B's officer proposing the number, even though case A had
    proposed it first and B's proposal joined A's entry."""
    first, second = await _case(coordination, confirmed=True), await _case(coordination, confirmed=True)
    number = f.phone()
    answers = []
    for case_id in (first, second):
        body = {"number": number, "category": "impersonation", "reason": "from the case", "case_id": case_id}
        answers.append(
            await blocklist.post("/v1/blocklist/proposals", json=body, headers=f.officer(unit=UNIT))
        )
    assert [a.status_code for a in answers] == [201, 200], answers[1].text
    auditor = f.officer("auditor", unit=UNIT)
    trails = {
        case_id: [
            (e["action"], e["legal_basis"])
            for e in (
                await coordination.get("/v1/audit", params={"case_id": case_id}, headers=auditor)
            ).json()["items"]
            if e["action"].startswith("blocklist.")
        ]
        for case_id in (first, second)
    }
    # Each cites its case by the number officers know it by (the case's timeline showed a UUID).
    numbers = {
        c: (await coordination.get(f"/v1/cases/{c}", headers=f.officer(unit=UNIT))).json()["case_number"]
        for c in (first, second)
    }
    assert trails == {
        first: [("blocklist.proposed", f"case {numbers[first]}")],
        second: [("blocklist.proposal_joined", f"case {numbers[second]}: from the case")],
    }
