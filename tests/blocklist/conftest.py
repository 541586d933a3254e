"""The blocklist service in-process with its Kafka feed and expiry job running, with settings of a test's
own (the session's is `tests.conftest.blocklist`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from services.blocklist.app import build
from services.blocklist.settings import BlocklistSettings
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import eventually

Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def blocklist_client(infra: Infra) -> Client:
    @contextlib.asynccontextmanager
    async def start(**overrides: object) -> AsyncIterator[httpx.AsyncClient]:
        defaults: dict[str, object] = {"expiry_interval_s": 0.2, "publish_poll_s": 0.2}
        settings = BlocklistSettings(**(defaults | overrides))  # type: ignore[arg-type]
        app = build(infra.common, settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://blocklist", timeout=30
            ) as client:
                yield client

    return start


async def wait_expired(blocklist: httpx.AsyncClient, entry_id: str) -> None:
    """Until the expiry job has ended the entry (an officer lists it among the expired)."""

    async def expired() -> bool:
        params = {"status": "expired"}
        rows = (await blocklist.get("/v1/blocklist/entries", params=params, headers=f.officer())).json()[
            "items"
        ]
        return entry_id in {r["id"] for r in rows}

    await eventually(expired, timeout_s=10)


async def sync_numbers(
    blocklist: httpx.AsyncClient, headers: dict[str, str], since: int = 0, etag: str | None = None
) -> httpx.Response:
    """A telecom's sync of the numbers after `since`."""
    extra = {"If-None-Match": etag} if etag else {}
    return await blocklist.get("/v1/blocklist", params={"since": since}, headers=headers | extra)


async def listed_number(blocklist: httpx.AsyncClient, number: str, reason: str = "confirmed in case") -> Any:
    """The number proposed by one officer and approved by another: its entry, listed."""
    proposed = await blocklist.post(
        "/v1/blocklist/proposals",
        json={"number": number, "category": "impersonation", "reason": reason},
        headers=f.officer("operator", sub="proposer"),
    )
    assert proposed.status_code == 201, proposed.text
    reviewed = await blocklist.post(
        f"/v1/blocklist/entries/{proposed.json()['id']}/review",
        json={"decision": "approve"},
        headers=f.officer("operator", sub="reviewer"),
    )
    assert reviewed.status_code == 200, reviewed.text
    return reviewed.json()
