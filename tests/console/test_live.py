"""Live streams are bounded: one the API will never show anything ends, saying why, and a session and a
client address have a few open at most (each polls the APIs through the pool every page shares)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from services.console.app import build as build_console
from services.console.settings import ConsoleSettings
from tests.console.conftest import UNIT, Site, serving
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def _officer(
    console: str, subject: str, address: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An officer's browser; `address`: as the proxy in front of the console says it (X-Forwarded-For)."""
    headers = {"X-Forwarded-For": address} if address else {}
    async with httpx.AsyncClient(base_url=console, timeout=10, headers=headers) as browser:
        signed = await browser.post(
            "/signin/officer", data={"subject": subject, "unit": UNIT, "role": "operator"}
        )
        assert signed.status_code == 303
        yield browser


async def _open(streams: contextlib.AsyncExitStack, browser: httpx.AsyncClient) -> int:
    """Open a live stream of the queue and keep it open (until `streams` closes); its status."""
    response = await streams.enter_async_context(browser.stream("GET", "/live/queue"))
    return response.status_code


async def test_a_stream_of_a_case_the_api_will_never_show_ends_saying_why(site: Site):
    async with _officer(site.console, "o-live-end") as officer:
        for case_id, status in (("00000000-0000-4000-8000-000000000000", 404), ("-" * 36, 422)):
            ended = await officer.get(f"/live/cases/{case_id}", headers={"Accept": "text/event-stream"})
            assert ended.status_code == 200
            assert "event: end" in ended.text and f'"status":{status}' in ended.text


async def test_a_session_and_an_address_have_a_few_streams_open_at_most(site: Site):
    settings = ConsoleSettings(
        coordination_url=site.coordination,
        notifier_url=site.notifier,
        live_interval_s=1.0,
        live_per_session=2,
        live_per_address=3,
    )
    async with (
        serving(build_console(site.infra.common, settings)) as console,
        _officer(console, "o-many") as many,
        _officer(console, "o-same-address") as neighbour,
        _officer(console, "o-elsewhere", address="203.0.113.7") as elsewhere,
        contextlib.AsyncExitStack() as streams,
    ):
        async with contextlib.AsyncExitStack() as first:
            assert await _open(first, many) == 200
            assert await _open(streams, many) == 200
            assert await _open(streams, many) == 429  # the session's cap
            assert await _open(streams, neighbour) == 200
            assert await _open(streams, neighbour) == 429  # the address's cap: 3 open from it
            assert await _open(streams, elsewhere) == 200
        # A stream closed gives its slot back (when the console has seen it go).
        async with contextlib.AsyncExitStack() as again:

            async def reopened() -> bool:
                return await _open(again, neighbour) == 200

            assert await eventually(reopened) is True

        # So does a stream that ended (a case not there): the session has its second one again. (Asked once
        # the address has a slot again: the reopened stream's, when the console has seen it go.)
        async def ended() -> str | None:
            got = await many.get("/live/cases/00000000-0000-4000-8000-000000000000")
            return None if got.status_code == 429 else got.text

        assert "event: end" in await eventually(ended)

        async def second() -> bool:
            return await _open(streams, many) == 200

        assert await eventually(second) is True
