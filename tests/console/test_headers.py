"""Every console response says what the browser may do with it: only the console's own script and styles
run, it is never framed or sniffed, names no page to other sites, and what carries personal data is never
stored; and the pages still work in a real browser under that policy."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from services.console.app import build
from tests import factories as f
from tests.console.conftest import UNIT, Site
from tests.coordination.conftest import case_body

pytestmark = pytest.mark.integration

EVERY = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


async def test_every_response_carries_the_security_headers(site: Site):
    async with httpx.AsyncClient(base_url=site.console, timeout=10) as officer:
        signin = await officer.get("/signin")
        signed = await officer.post(
            "/signin/officer", data={"subject": "o-hdr", "unit": UNIT, "role": "operator"}
        )
        answers = {
            "sign-in page": signin,
            "sign-in": signed,
            "queue": await officer.get("/"),
            "refusal": await officer.get("/cases/00000000-0000-4000-8000-000000000000"),
            "action": await officer.post("/incidents/0123456789abcdef0123/status", data={"csrf": "x"}),
            "live": await officer.get("/live/cases/00000000-0000-4000-8000-000000000000"),
            "script": await officer.get("/static/console.js"),
        }
    for name, answer in answers.items():
        assert {k: answer.headers.get(k) for k in EVERY} == EVERY, name
        policy = answer.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, name
        if name != "script":  # pages and answers carry personal data; the static script may be cached
            assert answer.headers["cache-control"] == "no-store", name
    assert answers["refusal"].status_code == 404 and answers["queue"].status_code == 200


async def test_a_bugs_500_carries_the_security_headers_too():
    """Starlette answers an unexpected error outside the middleware that adds the headers."""
    app = build()

    @app.get("/test-bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        answer = await client.get("/test-bug")
    assert answer.status_code == 500
    assert {k: answer.headers.get(k) for k in EVERY} == EVERY
    assert answer.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "a bug" not in answer.text


async def test_the_pages_script_styles_and_graph_work_under_the_policy(site: Site):
    bank, _ = await f.institution(site.sessions, "bank")
    officer = f.officer(unit=UNIT)
    async with httpx.AsyncClient(base_url=site.coordination, timeout=10) as api:
        body = case_body((bank, f.account("MULE"), "5000.00"))
        case_id = (await api.post("/v1/cases", json=body, headers=officer)).json()["id"]
    page = await site.officer("o-csp", "operator")
    await page.add_init_script(
        "window.__refused = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.__refused.push(e.violatedDirective));"
    )
    for path in ("/", "/dashboard", "/supervisor", f"/cases/{case_id}"):
        await page.goto(site.console + path)
        assert await page.evaluate("document.styleSheets[0].cssRules.length") > 10, path  # styles loaded
        assert await page.evaluate("window.__refused") == [], path
    await expect(page.get_by_test_id("flow-graph")).to_be_visible()
    # The script runs and its live view connects: an instruction issued elsewhere appears by itself.
    async with httpx.AsyncClient(base_url=site.coordination, timeout=10) as api:
        query = {"kind": "query", "institution_id": bank, "account": f.account("MULE")}
        assert (
            await api.post(f"/v1/cases/{case_id}/instructions", json=query, headers=officer)
        ).status_code == 201
    await expect(page.get_by_test_id("instruction")).to_have_count(1)
    assert await page.evaluate("window.__refused") == []
    await page.context.close()
