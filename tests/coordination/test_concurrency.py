"""Two operators issuing the same stop-payment at once: the database lets one be active."""

from __future__ import annotations

import asyncio

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
