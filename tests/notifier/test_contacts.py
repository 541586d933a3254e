"""Ownership of citizen data: only the subscriber's operator sets a number's push id and language (they
decide where the warnings go); another operator is refused until the owner releases the number (port-out)."""

from __future__ import annotations

import pytest

from services.notifier.warnings import repository
from tests import factories as f

pytestmark = pytest.mark.integration


async def _contact(sessions, phone: str):
    async with sessions() as session:
        return await repository.contact(session, phone)


async def test_only_the_owning_operator_sets_a_contact_until_it_ports_the_number_out(notifier, sessions):
    owner_id, owner = await f.institution(sessions, "telecom")
    other_id, other = await f.institution(sessions, "telecom")
    phone = f.phone()
    client = notifier.client

    mine = {"phone": phone, "language": "ug", "push_id": "app-owner"}
    assert (await client.put("/v1/contacts", json=mine, headers=owner)).status_code == 204
    hijack = {"phone": phone, "language": "zh", "push_id": "app-attacker"}
    refused = await client.put("/v1/contacts", json=hijack, headers=other)
    assert refused.status_code == 403, refused.text
    kept = await _contact(sessions, phone)
    assert (kept.operator, kept.push_id, kept.language) == (owner_id, "app-owner", "ug")

    # The other operator cannot release what is not its own; the owner can.
    release = {"phone": phone}
    assert (await client.post("/v1/contacts/release", json=release, headers=other)).status_code == 404
    assert (await client.post("/v1/contacts/release", json=release, headers=owner)).status_code == 204
    assert await _contact(sessions, phone) is None

    assert (await client.put("/v1/contacts", json=hijack, headers=other)).status_code == 204
    ported = await _contact(sessions, phone)
    assert (ported.operator, ported.push_id) == (other_id, "app-attacker")
    assert (await client.put("/v1/contacts", json=mine, headers=owner)).status_code == 403


@pytest.mark.parametrize("push_id", ["", "  \n"])
async def test_a_blank_push_id_is_refused_and_nothing_is_set(notifier, sessions, push_id):
    """Pushes would later be tried to it; a number without the app leaves `push_id` out."""
    _, telecom = await f.institution(sessions, "telecom")
    phone = f.phone()
    body = {"phone": phone, "language": "zh", "push_id": push_id}
    refused = await notifier.client.put("/v1/contacts", json=body, headers=telecom)
    assert refused.status_code == 422, refused.text
    assert [d["field"] for d in refused.json()["error"]["details"]] == ["body.push_id"]
    assert await _contact(sessions, phone) is None
    del body["push_id"]
    assert (await notifier.client.put("/v1/contacts", json=body, headers=telecom)).status_code == 204
