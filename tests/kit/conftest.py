"""Fixtures of the kit tests: the services whose routes the kit's rules guard."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.blocklist.conftest import blocklist_client
from tests.conftest import Infra


@pytest.fixture(scope="session")
async def blocklist(infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    async with blocklist_client(infra)() as client:
        yield client
