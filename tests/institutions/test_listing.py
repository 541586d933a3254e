"""`GET /v1/institutions` as an officer choosing whom to instruct: each institution's id, name, kind and
whether instructions reach it, page by page, and nothing an institution keeps secret."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.institutions import credentials, users
from services.kit.db import unit_of_work
from tests import factories as f
from tests.coordination.conftest import bank

pytestmark = pytest.mark.integration


async def _all(c: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every page, following the cursor (the session's database holds other tests' institutions too)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await c.get(
            "/v1/institutions", params={**params, "cursor": cursor} if cursor else params, headers=headers
        )
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_officers_list_the_institutions_they_may_instruct_and_no_secret(coord, sessions):
    c = coord.client
    hooked, key, secret = await bank(sessions, webhook_url="https://bank.example/stopline", kafka=False)
    payment, _, _ = await bank(sessions, kind="payment")
    telecom, _ = await f.institution(sessions, "telecom")
    named = f.unique("bank")
    async with unit_of_work(sessions) as session:
        await credentials.create_institution(session, institution_id=named, kind="bank", name="昌吉农商银行")
    mine = {hooked, payment, telecom, named}

    listed = {i["id"]: i for i in await _all(c, f.officer(), limit=2) if i["id"] in mine}
    assert listed == {
        hooked: {"id": hooked, "name": hooked, "kind": "bank", "receives_instructions": True},
        payment: {"id": payment, "name": payment, "kind": "payment", "receives_instructions": True},
        telecom: {"id": telecom, "name": telecom, "kind": "telecom", "receives_instructions": False},
        named: {"id": named, "name": "昌吉农商银行", "kind": "bank", "receives_instructions": True},
    }
    every = await _all(c, f.officer("auditor"))
    assert [i["id"] for i in every] == sorted(i["id"] for i in every)  # by id, each once
    assert len({i["id"] for i in every}) == len(every)
    # Of the kinds asked only.
    kinds = {i["kind"] for i in await _all(c, f.officer("supervisor"), kind=["bank", "payment"])}
    assert kinds == {"bank", "payment"}

    # Nothing of the webhook, its secret or a key, in any page.
    page = await c.get("/v1/institutions", params={"limit": 500}, headers=f.officer())
    assert secret and secret not in page.text and "bank.example" not in page.text
    assert key["Authorization"].removeprefix("Bearer ") not in page.text
    assert "webhook" not in page.text and "whsec_" not in page.text and "slk_" not in page.text


async def test_an_institution_lists_no_other_and_a_bad_query_is_named(coord, sessions):
    c = coord.client
    inst, key, _ = await bank(sessions)
    async with unit_of_work(sessions) as session:
        password = await users.add_user(session, institution_id=inst, username="li.na")
    signed = await c.post(
        "/v1/institution/sessions", json={"institution_id": inst, "username": "li.na", "password": password}
    )
    person = {"Authorization": f"Bearer {signed.json()['token']}"}
    for who in ({}, key, person):  # no one, the bank's key, the bank's staff: no officer
        assert (await c.get("/v1/institutions", headers=who)).status_code == 401

    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"kind": "police"}, "kind"),
        ({"cursor": "Bank A"}, "cursor"),
    ):
        refused = await c.get("/v1/institutions", params=params, headers=f.officer())
        assert refused.status_code == 422, (params, refused.text)
        assert field in refused.text
