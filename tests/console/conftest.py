"""Fixtures of the console tests: the coordination API, the notifier and the console served on real
ports (the browser needs them), headless Chromium from Debian driven by Playwright, and helpers to sign
people in. Screenshots go to .local/screenshots/."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from deploy.local.common import free_port
from services.coordination.settings import CoordinationSettings
from services.institutions import users
from services.kit.db import unit_of_work
from streams import topics
from streams.producer import Producer, Record
from streams.schemas.alerts import Alert
from tests import factories as f
from tests.conftest import Infra
from tests.coordination.conftest import FAST

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).parents[2] / ".local" / "screenshots"
UNIT = "changji-anti-fraud-centre"


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The app on a port of its own, in this event loop; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@dataclass
class Site:
    console: str
    coordination: str
    notifier: str
    browser: Browser
    sessions: async_sessionmaker[AsyncSession]
    infra: Infra

    async def person(self, *, viewport: ViewportSize | None = None, js: bool = True) -> BrowserContext:
        context = await self.browser.new_context(
            viewport=viewport or {"width": 1440, "height": 900}, java_script_enabled=js, locale="zh-CN"
        )
        context.set_default_timeout(20_000)
        return context

    async def _signed_in(self, form_id: str, fields: dict[str, str]) -> Page:
        page = await (await self.person()).new_page()
        await page.goto(self.console + "/signin")
        form = page.locator(form_id)
        for name, value in fields.items():
            field = form.locator(f"[name={name}]")
            if await field.evaluate("e => e.tagName") == "SELECT":
                await field.select_option(value)
            else:
                await field.fill(value)
        # (until the page the sign-in leads to has loaded: the sign-in page is loaded already, and a page
        # asked for before the answer came would cancel the sign-in, its cookie never set)
        async with page.expect_navigation():
            await form.locator("button").click()
        return page

    async def officer(self, subject: str, role: str, unit: str = UNIT) -> Page:
        """A browser session of an officer signed in through the local issuer."""
        return await self._signed_in("#officer-signin", {"subject": subject, "unit": unit, "role": role})

    async def bank_user(self, institution: str, username: str, password: str) -> Page:
        """A browser session of an institution's user signed in with their password."""
        fields = {"institution": institution, "username": username, "password": password}
        return await self._signed_in("#institution-signin", fields)

    async def send_alerts(self, *alerts: Alert) -> None:
        producer = Producer(self.infra.kafka, client_id="console-tests")
        await producer.start()
        try:
            topic = topics.name(topics.ALERTS, self.infra.prefix)
            await producer.send_all([Record(topic=topic, value=a.model_dump_json().encode()) for a in alerts])
        finally:
            await producer.stop()

    async def institution_user(self, kind: str = "bank") -> tuple[str, str, str]:
        """A new institution with a person who signs in: (institution id, user name, password)."""
        ident, _ = await f.institution(self.sessions, kind)
        async with unit_of_work(self.sessions) as session:
            password = await users.add_user(session, institution_id=ident, username="li.na")
        return ident, "li.na", password


async def shot(page: Page, name: str, *, full: bool = True) -> Path:
    """A screenshot of the page as it is, under .local/screenshots/ (the main ones are copied to docs/)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full)
    return path


# Per module: the servers' consumers, relay and scheduler must not outlive the console tests (the
# coordination tests count on being the only relay and consumers of the session's topics).
@pytest.fixture(scope="module")
async def site(infra: Infra, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Site]:
    from services.console.app import build as build_console
    from services.console.settings import ConsoleSettings
    from services.coordination.app import build as build_coordination
    from services.notifier.app import build as build_notifier
    from services.notifier.settings import NotifierSettings

    coordination_app = build_coordination(
        infra.common, CoordinationSettings(**FAST, dashboard_interval_s=1.0)
    )
    notifier_app = build_notifier(infra.common, NotifierSettings(consume=False))
    async with (
        serving(coordination_app) as coordination,
        serving(notifier_app) as notifier,
    ):
        console_settings = ConsoleSettings(
            coordination_url=coordination, notifier_url=notifier, live_interval_s=0.5
        )
        async with (
            serving(build_console(infra.common, console_settings)) as console,
            async_playwright() as pw,
        ):
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield Site(console, coordination, notifier, browser, sessions, infra)
            finally:
                await browser.close()
