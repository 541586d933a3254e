"""The page's own script in a real browser: an action is sent once however often its button is clicked,
a request that gets no answer at all is said so, and live updates come back after the stream is lost."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import httpx
import pytest
from playwright.async_api import Page, Route, expect

from tests import factories as f
from tests.console.conftest import Site
from tests.coordination.conftest import case_body
from tests.kafka_tools import eventually

pytestmark = pytest.mark.integration


async def _freezes_waiting(site: Site, unit: str, n: int) -> list[str]:
    """`n` freezes requested by one supervisor of `unit`, waiting for a second one's approval."""
    bank, _ = await f.institution(site.sessions, "bank")
    requester = f.officer(role="supervisor", sub="sup-a", unit=unit)
    ids = []
    async with httpx.AsyncClient(base_url=site.coordination, timeout=10) as api:
        for _ in range(n):
            mule = f.account("MULE")
            made = await api.post("/v1/cases", json=case_body((bank, mule, "5000.00")), headers=requester)
            case_id = made.json()["id"]
            freeze = {
                "kind": "freeze",
                "institution_id": bank,
                "account": mule,
                "amount": "100.00",
                "document_number": "DOC-1",
            }
            asked = await api.post(f"/v1/cases/{case_id}/instructions", json=freeze, headers=requester)
            assert asked.status_code == 201 and asked.json()["status"] == "awaiting_approval", asked.text
            ids.append(asked.json()["id"])
    return ids


async def _status(site: Site, unit: str, instruction_id: str) -> str:
    async with httpx.AsyncClient(base_url=site.coordination, timeout=10) as api:
        found = await api.get(f"/v1/instructions/{instruction_id}", headers=f.officer(unit=unit))
    status: str = found.json()["status"]
    return status


async def _approvals_held(page: Page) -> tuple[list[str], defaultdict[str, asyncio.Event]]:
    """The page's approvals wait, sent, each until the test sets its instruction's event: the URLs they were
    sent to, and the events by instruction id."""
    sent: list[str] = []
    answers: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def held(route: Route) -> None:
        sent.append(route.request.url)
        await answers[route.request.url.rsplit("/", 2)[-2]].wait()
        await route.continue_()

    await page.route("**/instructions/*/approve", held)
    return sent, answers


async def _swaps_received(page: Page) -> list[str]:
    """The pieces the live stream sends the page from now on, as the browser receives them (its devtools
    protocol says so)."""
    swaps: list[str] = []
    devtools = await page.context.new_cdp_session(page)
    devtools.on(
        "Network.eventSourceMessageReceived",
        lambda event: (
            swaps.append(json.loads(event["data"])["html"]) if event["eventName"] == "swap" else None
        ),
    )
    await devtools.send("Network.enable")
    return swaps


# Counts the page's changes that show the given form's button enabled (`window.enabledAgain`).
_WATCH_ENABLED = """(action) => {
  window.enabledAgain = 0;
  const check = () => {
    const button = document.querySelector(`form[action="${action}"] button`);
    if (button && !button.disabled) window.enabledAgain += 1;
  };
  new MutationObserver(check).observe(document.body, { subtree: true, childList: true, attributes: true });
}"""


async def test_a_double_click_sends_the_action_once_and_reads_as_done(site: Site):
    unit = f.unique("unit")
    (freeze_id,) = await _freezes_waiting(site, unit, 1)
    page = await site.officer("sup-b", "supervisor", unit=unit)
    await page.goto(site.console + "/supervisor")
    sent, answers = await _approvals_held(page)  # the first approval waits until the test has looked
    button = page.get_by_test_id("approve").locator("button")
    await button.dblclick()
    await expect(button).to_be_disabled()  # while its request is on its way
    answers[freeze_id].set()
    await expect(page.locator("#notice")).to_have_text("已批准并下发。")
    assert sent == [f"{site.console}/instructions/{freeze_id}/approve"]
    assert await _status(site, unit, freeze_id) != "awaiting_approval"
    await page.context.close()


async def test_the_other_actions_of_an_instruction_wait_while_one_is_on_its_way(site: Site):
    """Decline and cancel beside an approval on its way: clicked, they would be refused (409) once the
    approval is done. They are disabled with it, and never enabled again: the rendering after the approval
    has none of the three."""
    unit = f.unique("unit")
    (freeze_id,) = await _freezes_waiting(site, unit, 1)
    page = await site.officer("sup-b", "supervisor", unit=unit)
    await page.goto(site.console + "/supervisor")
    sent, answers = await _approvals_held(page)
    await page.get_by_test_id("approve").locator("button").click()
    for action in ("approve", "decline", "cancel"):
        button = page.locator(f'form[action="/instructions/{freeze_id}/{action}"] button')
        await expect(button).to_be_disabled()
    await page.evaluate(_WATCH_ENABLED, f"/instructions/{freeze_id}/decline")
    answers[freeze_id].set()
    await expect(page.locator("#notice")).to_have_text("已批准并下发。")
    # (the barrier: the rendering after the approval, the freeze no longer waiting in it)
    await expect(page.locator(f'form[action="/instructions/{freeze_id}/decline"]')).to_have_count(0)
    assert await page.evaluate("window.enabledAgain") == 0
    assert sent == [f"{site.console}/instructions/{freeze_id}/approve"]
    await page.context.close()


async def test_a_change_arriving_while_an_action_is_on_its_way_waits_for_its_answer(site: Site):
    """The live stream re-renders the piece an approval was sent from (another freeze to approve): put in
    while the approval is on its way, it would bring the button back enabled, and one more click would send
    the approval again. It is held until the answer; then, rendered before the approval was done, it would
    show the approved freeze's button again (a click: a refusal): the page waits for a change rendered after
    the answer, and the approved freeze's button is never enabled again."""
    unit = f.unique("unit")
    (first,) = await _freezes_waiting(site, unit, 1)
    page = await site.officer("sup-b", "supervisor", unit=unit)
    swaps = await _swaps_received(page)
    await page.goto(site.console + "/supervisor")
    sent, answers = await _approvals_held(page)
    button = page.get_by_test_id("approve").locator("button")
    await button.click()
    await expect(button).to_be_disabled()
    (second,) = await _freezes_waiting(site, unit, 1)
    await eventually(lambda: any(f"/instructions/{second}/approve" in html for html in swaps), timeout_s=20)
    piece = page.locator("#supervision")
    await expect(piece).to_have_attribute("data-held", "1")  # the change came and is kept aside
    await expect(button).to_be_disabled()
    await expect(page.get_by_test_id("waiting-count")).to_have_text("1")
    await page.evaluate(_WATCH_ENABLED, f"/instructions/{first}/approve")
    answers[first].set()
    await expect(page.locator("#notice")).to_have_text("已批准并下发。")
    # (the barrier: the change rendered after the approval, the first freeze no longer waiting in it)
    await expect(page.locator(f'form[action="/instructions/{first}/approve"]')).to_have_count(0)
    await expect(piece).not_to_have_attribute("data-held", "1")
    await expect(page.locator(f'form[action="/instructions/{second}/approve"]')).to_be_visible()  # the change
    assert await page.evaluate("window.enabledAgain") == 0
    assert sent == [f"{site.console}/instructions/{first}/approve"]
    assert await _status(site, unit, first) != "awaiting_approval"
    await page.context.close()


async def test_an_action_done_while_another_of_its_piece_is_on_its_way_stays_disabled(site: Site):
    """Two approvals of one piece on their way: the first is done, and the rendering after it comes while
    the second is still on its way, so the piece keeps it aside; the first's form, still the one from
    before, keeps its button disabled until that rendering is put in (after the second's answer)."""
    unit = f.unique("unit")
    first, second = await _freezes_waiting(site, unit, 2)
    page = await site.officer("sup-b", "supervisor", unit=unit)
    await page.goto(site.console + "/supervisor")
    sent, answers = await _approvals_held(page)
    for instruction in (first, second):
        await page.locator(f'form[action="/instructions/{instruction}/approve"] button').click()
    await eventually(lambda: len(sent) == 2, timeout_s=10)
    await page.evaluate(_WATCH_ENABLED, f"/instructions/{first}/approve")
    answers[first].set()
    # (the barrier: the first's form settled, a rendering begun after its answer having come)
    settled = (
        f"""() => !document.querySelector('form[action="/instructions/{first}/approve"]').dataset.sending"""
    )
    await page.wait_for_function(settled, timeout=10_000)
    await expect(page.locator("#supervision")).to_have_attribute("data-held", "1")
    answers[second].set()
    for instruction in (first, second):
        await expect(page.locator(f'form[action="/instructions/{instruction}/approve"]')).to_have_count(0)
    assert await page.evaluate("window.enabledAgain") == 0
    assert sorted(sent) == sorted(f"{site.console}/instructions/{i}/approve" for i in (first, second))
    await page.context.close()


async def test_a_change_arriving_while_the_officer_types_is_shown_once_the_focus_leaves(site: Site):
    """A change of the piece someone is typing in is not put in then (it would take the form away), nor
    dropped (the stream sends a piece only when it changed: it would not come again): it is shown once the
    focus leaves the piece, and what was typed stays until then."""
    unit = f.unique("unit")
    (first,) = await _freezes_waiting(site, unit, 1)
    page = await site.officer("sup-b", "supervisor", unit=unit)
    swaps = await _swaps_received(page)
    await page.goto(site.console + "/supervisor")
    note = page.locator(f'form[action="/instructions/{first}/decline"] input[name="note"]')
    await note.fill("核实中")  # (the focus stays in it)
    (second,) = await _freezes_waiting(site, unit, 1)
    await eventually(lambda: any(f"/instructions/{second}/approve" in html for html in swaps), timeout_s=20)
    piece = page.locator("#supervision")
    await expect(piece).to_have_attribute("data-held", "1")
    await expect(note).to_have_value("核实中")
    await note.blur()
    await expect(page.locator(f'form[action="/instructions/{second}/approve"]')).to_be_visible()
    await expect(piece).not_to_have_attribute("data-held", "1")
    await page.context.close()


async def test_an_action_that_gets_no_answer_says_so(site: Site):
    unit = f.unique("unit")
    (freeze_id,) = await _freezes_waiting(site, unit, 1)
    page: Page = await site.officer("sup-b", "supervisor", unit=unit)
    await page.goto(site.console + "/supervisor")
    await page.route("**/instructions/*/approve", lambda route: route.abort("connectionreset"))
    button = page.get_by_test_id("approve").locator("button")
    await button.click()
    await expect(page.locator("#notice")).to_contain_text("网络错误")
    await expect(button).to_be_enabled()  # to be tried again
    assert await _status(site, unit, freeze_id) == "awaiting_approval"
    await page.context.close()


async def test_live_updates_come_back_after_a_bad_gateway_and_say_when_they_are_not_live(site: Site):
    """A browser gives an EventSource up after one answer that is not a 200 (a proxy's 502 while the
    console restarts); the page connects again by itself and shows it is not live until it is."""
    page = await site.officer("o-wall", "operator")
    refused = 0
    tried_again, gateway_back = asyncio.Event(), asyncio.Event()

    async def restarting(route: Route) -> None:
        nonlocal refused
        if gateway_back.is_set():
            await route.continue_()
            return
        refused += 1
        if refused > 1:
            tried_again.set()
        await route.fulfill(status=502, body="Bad Gateway")

    await page.route("**/live/queue*", restarting)
    await page.goto(site.console + "/")
    banner = page.get_by_test_id("not-live")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("未实时更新")
    await asyncio.wait_for(tried_again.wait(), 10)  # (a browser alone never asks again)
    gateway_back.set()
    await expect(banner).to_be_hidden(timeout=30_000)
    mule = f.account("WALL")
    await site.send_alerts(f.victim_alert(mule_bank=f.unique("bank"), mule=mule, amount="700.00"))
    await expect(page.get_by_test_id("incident").filter(has_text=mule)).to_have_count(1)
    await page.context.close()
