"""Blocklist fixtures: the service in-process with its Kafka feed and expiry job running."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from services.blocklist.app import build
from services.blocklist.settings import BlocklistSettings
from tests.conftest import Infra

Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def blocklist_client(infra: Infra) -> Client:
    @contextlib.asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        settings = BlocklistSettings(expiry_interval_s=0.2, publish_poll_s=0.2, **overrides)  # type: ignore[arg-type]
        app = build(infra.common, settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://blocklist", timeout=30
            ) as client:
                yield client

    return start


@pytest.fixture(scope="session")
async def blocklist(infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    async with blocklist_client(infra)() as client:
        yield client
