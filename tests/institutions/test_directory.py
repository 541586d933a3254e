"""Ingest's directory of institution ids on the real PostgreSQL: a member found is kept, an unknown id is
asked again only after its time to live, so events cost no query each."""

from __future__ import annotations

import asyncio

import pytest

from services.institutions import credentials
from services.institutions.directory import Directory
from services.kit.db import unit_of_work
from tests import factories as f

pytestmark = pytest.mark.integration


async def test_members_are_kept_and_unknown_ids_asked_again_only_after_their_ttl(sessions):
    member, _ = await f.institution(sessions, "bank")
    directory = Directory(sessions, unknown_ttl_s=1.0)
    code = f.unique("code")
    assert await directory.unknown([member, code, code]) == {code}
    assert directory.lookups == 1
    for _ in range(100):  # as many events as you like: no query
        assert await directory.unknown([member, code]) == {code}
    assert directory.lookups == 1
    # The bank's code becomes a member: seen once the unknown id's time to live has passed.
    async with unit_of_work(sessions) as session:
        await credentials.create_institution(session, institution_id=code, kind="bank", name=code)
    assert await directory.unknown([code]) == {code}
    await asyncio.sleep(1.0)  # the unknown id's time to live
    assert await directory.unknown([code]) == set()
    assert directory.lookups == 2
