"""An officer's session ends at the coordination API, so every console instance refuses it at once: a copy
of the cookie works until the officer signs out and on no instance after (an open live stream of it is
closed); the administrator's CLI ends every session of one officer and no other's; and sessions past
their end are removed."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.console.app import build as build_console
from services.console.ends import CHECK_S
from services.console.session import COOKIE, Sessions
from services.console.settings import DEV_SESSION_KEY, ConsoleSettings
from services.coordination.app import build as build_coordination
from services.coordination.jobs import with_the_scheduler
from services.coordination.officers.models import OfficerSession
from services.coordination.officers.sessions import SessionPurge
from services.coordination.settings import CoordinationSettings
from services.kit.audit.models import AuditEntry
from services.kit.tokens import issue
from tests import factories as f
from tests.console.conftest import UNIT, Site, serving
from tests.http import post_again_on_503

pytestmark = pytest.mark.integration
JSON = {"Accept": "application/json"}
STREAM = {"Accept": "text/event-stream"}


def _second_console(site: Site) -> FastAPI:
    """Another instance of the console, as a deployment runs several: the same key, nothing else shared."""
    return build_console(
        site.infra.common,
        ConsoleSettings(coordination_url=site.coordination, notifier_url=site.notifier, live_interval_s=0.5),
    )


async def _signed_in(site: Site, subject: str) -> tuple[str, str]:
    """A browser's sign-in: (its session cookie, the session's CSRF token)."""
    async with httpx.AsyncClient(base_url=site.console, timeout=10) as browser:
        # Signed in again when told the service is away (503), as an officer would: on a busy machine the
        # session's opening at coordination may outlast the console's timeout (seen once in ci-BK).
        signed = await post_again_on_503(
            browser, "/signin/officer", data={"subject": subject, "unit": UNIT, "role": "operator"}
        )
        assert signed.status_code == 303, signed.text
        cookie = browser.cookies[COOKIE]
    user = Sessions(DEV_SESSION_KEY, ttl_s=3600, idle_s=600).open(cookie)
    assert user is not None
    return cookie, user.csrf


async def _queue(base: str, cookie: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, cookies={COOKIE: cookie}, timeout=10) as browser:
        return await browser.get("/")


async def _refused_soon(base: str, cookie: str, *, since: float) -> httpx.Response:
    """The queue page of `cookie` on the console `base` once it is not shown, or `CHECK_S` and a second
    after the session's end (`since`), the longest a console instance takes the API's word that it is open."""
    while True:
        page = await _queue(base, cookie)
        if page.status_code != 200 or time.monotonic() - since > CHECK_S + 1:
            return page
        await asyncio.sleep(0.1)


async def test_a_copied_cookie_works_until_sign_out_and_then_on_no_console_instance(site: Site):
    subject = f.unique("officer-copied")
    cookie, csrf = await _signed_in(site, subject)
    async with (
        serving(_second_console(site)) as second,
        httpx.AsyncClient(cookies={COOKIE: cookie}, timeout=10) as copy,
    ):
        for base in (site.console, second):
            page = await copy.get(base + "/")
            assert page.status_code == 200 and subject in page.text

        async with copy.stream("GET", second + "/live/queue", headers=STREAM) as live:
            assert live.status_code == 200
            lines = live.aiter_lines()
            assert (await anext(lines)).startswith("retry:")  # open, on the other instance

            async with httpx.AsyncClient(base_url=site.console, cookies={COOKIE: cookie}) as officer:
                out = await officer.post("/signout", data={"csrf": csrf})
            assert out.status_code == 303 and out.headers["location"] == "/signin?out=1"

            async with asyncio.timeout(20):  # (the stream asks every 5 s whether its session is open)
                async for line in lines:
                    if line == "event: signedout":
                        break

        for base in (site.console, second):
            page = await copy.get(base + "/")
            assert page.status_code == 303 and page.headers["location"].startswith("/signin?next=")
            action = await copy.post(
                base + "/incidents/0123456789abcdef0123/status",
                data={"status": "dismissed", "csrf": csrf},
                headers=JSON,
            )
            assert action.status_code == 401 and action.json()["signin"] == "/signin"
            stream = await copy.get(base + "/live/queue", headers=STREAM)
            assert "event: signedout" in stream.text


async def _cli(*args: str) -> tuple[int, str, str]:
    """`python -m services.coordination.officers` on the test database: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.coordination.officers",
        *args,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode().strip(), err.decode()


async def test_the_cli_ends_every_session_of_one_officer_and_no_other(site: Site):
    lost, other = f.unique("officer-lost"), f.unique("officer-stays")
    laptop, desk = (await _signed_in(site, lost))[0], (await _signed_in(site, lost))[0]
    others = (await _signed_in(site, other))[0]
    for cookie in (laptop, desk, others):
        assert (await _queue(site.console, cookie)).status_code == 200

    code, printed, err = await _cli("revoke-sessions", lost)
    assert code == 0, err
    assert printed == f"(2 console sessions of {lost} ended)"

    revoked = time.monotonic()
    for cookie in (laptop, desk):
        refused = await _refused_soon(site.console, cookie, since=revoked)
        assert refused.status_code == 303 and refused.headers["location"].startswith("/signin")
    kept = await _queue(site.console, others)
    assert kept.status_code == 200 and other in kept.text
    async with site.sessions() as s:
        audited = (await s.scalars(select(AuditEntry).where(AuditEntry.entity_id == lost))).all()
    assert [(a.actor, a.action, a.entity_type, a.after) for a in audited] == [
        ("officers-cli", "officer_sessions.revoked", "officer", {"sessions_ended": 2})
    ]


async def test_sessions_past_their_end_are_removed_and_open_ones_kept(site: Site):
    now = datetime.now(UTC)
    past, open_ = secrets.token_hex(16), secrets.token_hex(16)
    async with site.sessions() as s, s.begin():
        for ident, ends in ((past, now - timedelta(seconds=1)), (open_, now + timedelta(hours=8))):
            s.add(OfficerSession(id=ident, subject="officer-purge", unit=UNIT, expires_at=ends))

    purge = with_the_scheduler(site.sessions, CoordinationSettings())["officer_session_purge"]
    assert isinstance(purge, SessionPurge)  # (it runs with the scheduler, every hour)
    assert await purge.once() >= 1

    async with site.sessions() as s:
        left = (await s.scalars(select(OfficerSession.id).where(OfficerSession.id.in_([past, open_])))).all()
    assert left == [open_]


async def test_a_day_long_session_opens_from_a_console_whose_clock_is_a_little_ahead(site: Site):
    """The console dates the session's end by its own clock; at the longest TTL (a day), one a few seconds
    ahead of coordination's would ask for more than a day. A few minutes of skew are taken, no more."""
    token = issue(subject=f.unique("officer-skew"), role="operator", unit=UNIT, ttl_s=3600)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=site.coordination, headers=headers, timeout=10) as console:
        for ahead, status in ((timedelta(seconds=30), 201), (timedelta(minutes=6), 422)):
            ends = datetime.now(UTC) + timedelta(hours=24) + ahead
            opened = await console.post("/v1/officer/sessions", json={"expires_at": ends.isoformat()})
            assert opened.status_code == status, opened.text


async def test_a_console_deployed_before_coordination_says_so_in_its_log(
    site: Site, caplog: pytest.LogCaptureFixture
):
    """Coordination of the version before has no officer sessions (404): the sign-in cannot be done, and the
    console's log says that coordination is to be upgraded first."""
    old = build_coordination(
        site.infra.common, CoordinationSettings(consume=False, relay=False, scheduler=False)
    )

    @old.middleware("http")
    async def before_officer_sessions(request: Request, call_next: Callable[[Request], Awaitable[Response]]):
        if request.url.path.startswith("/v1/officer/"):
            return JSONResponse({"detail": "Not Found"}, 404)  # (as an unknown route is answered)
        return await call_next(request)

    async with serving(old) as coordination:
        console = build_console(
            site.infra.common, ConsoleSettings(coordination_url=coordination, notifier_url=site.notifier)
        )
        async with serving(console) as base, httpx.AsyncClient(base_url=base, timeout=10) as browser:
            form = {"subject": f.unique("officer-early"), "unit": UNIT, "role": "operator"}
            refused = await browser.post("/signin/officer", data=form)
    assert refused.status_code == 503 and 'data-testid="signin-error"' in refused.text
    assert COOKIE not in browser.cookies
    said = [r.getMessage() for r in caplog.records if r.name == "services.console.signin"]
    assert said == [
        "the coordination API has no officer sessions (404 on POST /v1/officer/sessions): deploy "
        "coordination of this version before the console (docs/operations.md#upgrade-order)"
    ]


def _checks(outcome: str) -> float:
    """Officer sessions checked so far by the consoles of this process, by outcome."""
    found = REGISTRY.get_sample_value("stopline_console_session_checks_total", {"outcome": outcome})
    return found or 0.0


async def test_an_instance_takes_the_apis_word_for_a_few_seconds_and_a_sign_out_holds_within_them(site: Site):
    cookie, csrf = await _signed_in(site, f.unique("officer-cached"))
    outcomes = ("open", "cached", "ended", "unavailable")
    before = {o: _checks(o) for o in outcomes}
    async with serving(_second_console(site)) as second:
        for _ in range(3):
            page = await _queue(second, cookie)
            assert page.status_code == 200
        assert {o: _checks(o) - before[o] for o in outcomes} == {
            "open": 1,
            "cached": 2,
            "ended": 0,
            "unavailable": 0,
        }

        async with httpx.AsyncClient(base_url=site.console, cookies={COOKIE: cookie}) as officer:
            out = await officer.post("/signout", data={"csrf": csrf})
        assert out.status_code == 303
        # The other instance took the API's word moments ago: it refuses the copy once it asks again.
        refused = await _refused_soon(second, cookie, since=time.monotonic())
        assert refused.status_code == 303 and _checks("ended") - before["ended"] == 1

    away = build_console(
        site.infra.common, ConsoleSettings(coordination_url="http://127.0.0.1:9", notifier_url=site.notifier)
    )
    other = (await _signed_in(site, f.unique("officer-away")))[0]
    async with serving(away) as console_away:
        page = await _queue(console_away, other)
    assert page.status_code == 503 and _checks("unavailable") - before["unavailable"] == 1


async def test_a_sign_out_while_coordination_is_away_signs_the_browser_out_and_ends_the_session_later(
    site: Site,
):
    """A sign-out the API does not take (an outage) still removes the browser's cookie, says the end is
    pending, and the console ends the session at the API once it answers again."""
    cookie, csrf = await _signed_in(site, f.unique("officer-outage"))
    user = Sessions(DEV_SESSION_KEY, ttl_s=3600, idle_s=600).open(cookie)
    assert user is not None
    settings = ConsoleSettings(coordination_url="http://127.0.0.1:9", notifier_url=site.notifier)
    async with serving(build_console(site.infra.common, settings)) as away:
        async with httpx.AsyncClient(base_url=away, cookies={COOKIE: cookie, "stopline_lang": "en"}) as b:
            out = await b.post("/signout", data={"csrf": csrf})
            assert out.status_code == 303 and out.headers["location"] == "/signin?out=pending"
            removed = [c for c in out.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
            assert len(removed) == 1 and "Max-Age=0" in removed[0]
            told = await b.get(out.headers["location"])
            assert "your session has not ended there yet" in told.text
        refused = await _queue(away, cookie)  # a copy of the cookie, on the instance signed out on
        assert refused.status_code == 303 and refused.headers["location"].startswith("/signin")

        settings.coordination_url = site.coordination  # coordination answers again (where this console asks)
        headers = {"Authorization": f"Bearer {user.token}"}
        async with httpx.AsyncClient(base_url=site.coordination, headers=headers) as api:
            async with asyncio.timeout(CHECK_S + 5):  # (the console tries again every CHECK_S)
                while True:
                    check = await api.get(f"/v1/officer/sessions/{user.session_id}")
                    if check.status_code != 200:
                        break
                    await asyncio.sleep(0.2)
            assert check.status_code == 401
