"""The alert queue in a real browser: an operator signs in, and an alert sent to Kafka appears without
a reload, grouped with the other victims of the same mule account into one incident."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests import factories as f
from tests.console.conftest import Site, shot

pytestmark = pytest.mark.integration


async def test_alert_arrives_live_and_groups_by_mule(site: Site):
    page = await site.officer("officer-wang", "operator")
    await expect(page.get_by_test_id("who")).to_contain_text("officer-wang")
    await page.evaluate("window.__notReloaded = true")
    mule, bank = f.account("MULE"), f.unique("bank")
    await site.send_alerts(f.victim_alert(mule_bank=bank, mule=mule, amount="48000.00"))
    row = page.get_by_test_id("incident").filter(has_text=mule)
    await expect(row).to_have_count(1)
    await expect(row.get_by_test_id("victims")).to_have_text("1")

    await site.send_alerts(
        f.victim_alert(mule_bank=bank, mule=mule, amount="12000.00"),
        f.victim_alert(mule_bank=bank, mule=mule, amount="9000.00"),
    )
    await expect(row.get_by_test_id("victims")).to_have_text("3")
    await expect(row).to_contain_text("¥69,000.00")
    assert await page.evaluate("window.__notReloaded") is True  # the page was never reloaded
    await shot(page, "queue")

    # One key triages the whole incident: its three alerts move, the row says so.
    await row.focus()
    await page.keyboard.press("t")
    await expect(page.locator("#notice")).to_contain_text("已研判")
    await expect(row.locator(".badge.new")).to_have_count(0)
    await page.context.close()


async def test_pages_ask_for_sign_in_and_sign_out_ends_the_session(site: Site):
    context = await site.person()
    page = await context.new_page()
    await page.goto(site.console + "/cases")
    await expect(page).to_have_url(f"{site.console}/signin?next=%2Fcases")
    form = page.locator("#officer-signin")
    await form.locator("input[name=subject]").fill("officer-li")
    await form.locator("button").click()
    await expect(page).to_have_url(f"{site.console}/cases")
    await page.get_by_role("button", name="退出").click()
    await page.goto(site.console + "/cases")
    await expect(page).to_have_url(f"{site.console}/signin?next=%2Fcases")
    await context.close()
