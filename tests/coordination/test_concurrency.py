"""Two operators issuing the same stop-payment at once: the database lets one be active; a request sent
again with its key issues nothing more."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select

from services.coordination.instructions.models import Instruction
from tests import factories as f
from tests.coordination.conftest import bank, open_case

pytestmark = pytest.mark.integration


async def test_concurrent_duplicate_stop_payment_creates_one(coord, sessions):
    c = coord.client
    inst, _, _ = await bank(sessions)
    account = f.account("MULE")
    first, second = f.officer(unit="cc-unit"), f.officer(unit="cc-unit")
    case_id = await open_case(c, first, (inst, account, "9000.00"))
    body = {"kind": "stop_payment", "institution_id": inst, "account": account, "amount": "9000.00"}
    responses = await asyncio.gather(
        *(c.post(f"/v1/cases/{case_id}/instructions", json=body, headers=h) for h in (first, second) * 4)
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 7, [r.text for r in responses]
    async with sessions() as s:
        n = (
            await s.execute(
                select(func.count()).where(Instruction.account == account, Instruction.kind == "stop_payment")
            )
        ).scalar_one()
    assert n == 1


async def test_a_request_sent_again_with_its_key_issues_one_instruction_and_answers_with_it(coord, sessions):
    """A query has no one-active index: only the request's key stops a double submit from sending two."""
    c, op = coord.client, f.officer(unit="cc-unit")
    inst, _, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(c, op, (inst, account, "9000.00"))
    url = f"/v1/cases/{case_id}/instructions"
    body = {"kind": "query", "institution_id": inst, "account": account, "request_id": str(uuid.uuid4())}
    at_once = await asyncio.gather(*(c.post(url, json=body, headers=op) for _ in range(4)))
    again = await c.post(url, json=body, headers=op)  # a retry after a timeout
    assert {r.status_code for r in [*at_once, again]} == {201}, [r.text for r in at_once]
    assert len({r.json()["id"] for r in [*at_once, again]}) == 1
    async with sessions() as s:
        stmt = select(func.count()).where(Instruction.account == account, Instruction.kind == "query")
        assert (await s.execute(stmt)).scalar_one() == 1
    asked_otherwise = [
        ({"kind": "stop_payment", "amount": "9000.00"}, ["kind", "amount"]),
        ({"account": f.account("CORRECTED")}, ["account"]),
        ({"since": f.iso(f.minutes_ago(90))}, ["since"]),  # a query's start corrected
        ({"reason": "the victim's second payment"}, ["reason"]),
    ]
    for other, differs in asked_otherwise:
        refused = await c.post(url, json={**body, **other}, headers=op)  # the key of another request
        assert refused.status_code == 409 and refused.json()["error"]["details"] == {
            "field": "body.request_id",
            "differs": differs,
        }, refused.text
    unkeyed = {k: v for k, v in body.items() if k != "request_id"}
    assert (await c.post(url, json=unkeyed, headers=op)).json()["id"] != at_once[0].json()["id"]
