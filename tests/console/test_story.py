"""The whole police story in a real browser, each person in their own browser session: an operator
opens a case from a live incident and issues a stop-payment; the bank's staff execute it in the portal;
the money-flow graph changes; a query's answer proposes the next hop, accepted in one action; a
supervisor requests a freeze, a second supervisor approves it; release and return follow; the next hop's
unanswered query is withdrawn. A second operator is refused where the API refuses, and another unit cannot
see the case."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.async_api import Page, expect

from services.console import web
from tests import factories as f
from tests.console.conftest import Site, shot

# Alone (make test): a browser and every service would starve the tests beside it of both cores.
pytestmark = [pytest.mark.integration, pytest.mark.alone]


async def answer(bank: Page, site: Site, kind: str, outcome: str, **fields: str) -> None:
    """The bank's staff open the newest instruction of this kind waiting for them and answer it."""
    await bank.goto(site.console + "/portal")
    row = (
        bank.get_by_test_id("inbox-row")
        .and_(bank.locator(f'[data-kind="{kind}"]'))
        .filter(has_not=bank.locator('[data-status="executed"]'))
    )
    waiting = row.filter(has=bank.locator(".st-issued, .st-delivered, .st-acknowledged")).first
    await waiting.get_by_role("link").click()
    form = bank.locator("#answer-form")
    await form.locator(f'input[name=outcome][value="{outcome}"]').check()
    for name, value in fields.items():
        await form.locator(f"input[name={name}]").first.fill(value)
    await form.get_by_role("button").click()
    await expect(bank.get_by_test_id("flash")).to_contain_text("已回复")


async def test_the_police_story(site: Site):
    bank_id, staff, password = await site.institution_user()
    next_bank, next_staff, next_password = await site.institution_user()
    mule, victim_phone = f.account("MULE"), f.phone()
    operator = await site.officer("officer-zhao", "operator")
    await site.send_alerts(
        f.victim_alert(mule_bank=bank_id, mule=mule, amount="30000.00", victim_phone=victim_phone),
        f.victim_alert(mule_bank=bank_id, mule=mule, amount="18000.00"),
    )

    # 1. The incident arrives in the queue; the operator opens it and opens the case.
    row = operator.get_by_test_id("incident").filter(has_text=mule)
    await expect(row.get_by_test_id("victims")).to_have_text("2")
    await row.get_by_role("link").first.click()
    await shot(operator, "incident")
    await operator.locator("#open-case button").click()
    await expect(operator.get_by_test_id("flash")).to_contain_text("案件已立")
    case_url = operator.url
    await expect(operator.get_by_test_id("total-lost")).to_have_text("¥48,000.00")

    # 2. Stop-payment on the mule account, from the graph's node.
    await operator.get_by_test_id("flow-node").filter(has_text=mule).get_by_text("紧急止付").click()
    form = operator.locator("#issue-form")
    await expect(form.locator("input[name=account]")).to_have_value(mule)
    await form.locator("input[name=amount]").fill("48000.00")
    await form.get_by_role("button").click()
    await expect(operator.get_by_test_id("flash")).to_contain_text("止付指令已下发")
    stop = operator.get_by_test_id("instruction").and_(operator.locator('[data-kind="stop_payment"]'))
    await expect(stop).to_have_count(1)

    # A second operator issuing the same stop-payment is refused, as the API refuses it (409).
    second = await site.officer("officer-qian", "operator")
    await second.goto(f"{case_url}?kind=stop_payment&institution={bank_id}&account={mule}&amount=48000.00")
    await second.locator("#issue-form").get_by_role("button").click()
    await expect(second.get_by_test_id("flash")).to_contain_text("操作被拒绝 (409)")
    await shot(second, "refused")
    # An officer of another unit does not see the case at all (404).
    stranger = await site.officer("officer-sun", "operator", unit="urumqi-psb")
    await stranger.goto(case_url)
    await expect(stranger.get_by_test_id("error-message")).to_contain_text("no case")

    # 3. The bank's staff sign in and execute it; the operator's page changes by itself.
    bank = await site.bank_user(bank_id, staff, password)
    await expect(bank.get_by_test_id("inbox-row")).to_have_count(1)
    await shot(bank, "portal")
    await answer(bank, site, "stop_payment", "executed", held_amount="40000.00")
    await expect(stop.get_by_test_id("instruction-status")).to_have_text("已执行")
    node = operator.get_by_test_id("flow-node").filter(has_text=mule)
    await expect(node).to_have_attribute("data-state", "stopped")
    await expect(operator.get_by_test_id("total-stopped")).to_have_text("¥40,000.00")

    # 4. Follow the money: a query; the bank answers with the transfer out; the next hop is proposed.
    await operator.goto(f"{case_url}?kind=query&institution={bank_id}&account={mule}")
    await operator.locator("#issue-form").get_by_role("button").click()
    await expect(operator.get_by_test_id("flash")).to_contain_text("查询指令已下发")
    next_account = f.account("L2")
    await bank.goto(site.console + "/portal")
    query_row = bank.get_by_test_id("inbox-row").and_(bank.locator('[data-kind="query"]'))
    await query_row.get_by_role("link").click()
    form = bank.locator("#answer-form")
    await form.locator('input[name=outcome][value="executed"]').check()
    await form.locator("input[name=holder_name]").fill("王某")
    await form.locator("input[name=balance]").fill("40000.00")
    await form.locator("input[name=to_institution]").first.fill(next_bank)
    await form.locator("input[name=to_account]").first.fill(next_account)
    await form.locator("input[name=amount]").first.fill("8000.00")
    # Just now, in the centre's time (the form's): after the query's `since`, the alert's first payment.
    moved = datetime.now(web.LOCAL)
    await form.locator("input[name=at]").first.fill(moved.strftime("%Y-%m-%dT%H:%M:%S"))
    await form.locator("input[name=transfer_id]").first.fill("TX-20261207-0001")
    await shot(bank, "portal-answer")
    await form.get_by_role("button").click()
    await expect(bank.get_by_test_id("flash")).to_contain_text("已回复")
    # Answered, the query is settled: its page says so and offers no second answer.
    await query_row.get_by_role("link").click()
    await expect(bank.get_by_test_id("portal-status")).to_have_text("已执行")
    await expect(bank.get_by_test_id("portal-settled")).to_contain_text("已办结")
    await expect(bank.locator("#answer-form")).to_have_count(0)
    await expect(operator.get_by_test_id("flow-node")).to_have_count(2)
    await expect(operator.get_by_test_id("proposal")).to_have_count(1)
    await operator.locator("#accept-proposals button").click()
    await expect(operator.get_by_test_id("instruction")).to_have_count(4)  # + stop and query on layer 2
    await shot(operator, "case")

    # 5. A supervisor requests the freeze; the requester cannot approve it; a second supervisor does.
    chief = await site.officer("chief-liu", "supervisor")
    await chief.goto(case_url)
    freeze_form = (
        chief.get_by_test_id("instruction")
        .and_(chief.locator('[data-kind="stop_payment"]'))
        .filter(has_text=mule)
        .get_by_test_id("freeze")
    )
    await freeze_form.locator("input[name=document_number]").fill("CJ-FRZ-2026-001")
    await freeze_form.get_by_role("button").click()
    await expect(chief.locator("#notice")).to_contain_text("冻结申请已提交")
    await chief.goto(site.console + "/supervisor")
    await expect(chief.get_by_test_id("approval")).to_have_count(1)
    await chief.get_by_test_id("approval").get_by_role("button", name="批准").click()
    await expect(chief.locator("#notice")).to_contain_text("操作被拒绝 (403)")
    second_chief = await site.officer("chief-zhou", "supervisor")
    await expect(second_chief.get_by_test_id("approval")).to_have_count(1)
    await shot(second_chief, "supervisor")
    await second_chief.get_by_test_id("approve").locator("input[name=note]").fill("证据充分")
    await second_chief.get_by_test_id("approval").get_by_role("button", name="批准").click()
    await expect(second_chief.locator("#notice")).to_contain_text("已批准")
    await expect(second_chief.get_by_test_id("approval")).to_have_count(0)
    await answer(bank, site, "freeze", "executed", held_amount="40000.00")
    await expect(node).to_have_attribute("data-state", "frozen")
    await expect(operator.get_by_test_id("total-frozen")).to_have_text("¥40,000.00")

    # 6. Release (a supervisor requests, the other approves), then the return to the victim.
    freeze = operator.get_by_test_id("instruction").and_(operator.locator('[data-kind="freeze"]'))
    await chief.goto(case_url)
    release = (
        chief.get_by_test_id("instruction")
        .and_(chief.locator('[data-kind="freeze"]'))
        .get_by_test_id("release")
    )
    await release.locator("input[name=document_number]").fill("CJ-REL-2026-001")
    await release.get_by_role("button").click()
    await expect(chief.locator("#notice")).to_contain_text("解冻申请已提交")
    await second_chief.goto(site.console + "/supervisor")
    await second_chief.get_by_test_id("approval").get_by_role("button", name="批准").click()
    await expect(second_chief.locator("#notice")).to_contain_text("已批准")
    await answer(bank, site, "release", "executed")
    await expect(freeze.get_by_test_id("instruction-status")).to_have_text("已解冻")
    await freeze.get_by_test_id("return").get_by_role("button").click()
    await answer(bank, site, "return_funds", "executed")
    await expect(operator.get_by_test_id("total-returned")).to_have_text("¥40,000.00")
    await expect(freeze.get_by_test_id("return")).to_have_count(0)  # all returned: nothing left to return
    await expect(operator.get_by_test_id("timeline")).to_contain_text("止付转冻结")
    await shot(operator, "case-returned")

    # 7. The next bank has not answered the layer-2 query: the operator withdraws it, saying why. Its
    # stop-payment is not withdrawn (it lapses by itself): no such button.
    layer2 = operator.get_by_test_id("instruction").filter(has_text=next_account)
    query2 = layer2.and_(operator.locator('[data-kind="query"]'))
    await expect(
        layer2.and_(operator.locator('[data-kind="stop_payment"]')).get_by_test_id("withdraw")
    ).to_have_count(0)
    await query2.get_by_test_id("withdraw").locator("input[name=note]").fill("机构逾期未答复")
    await query2.get_by_test_id("withdraw").get_by_role("button").click()
    await expect(query2.get_by_test_id("instruction-status")).to_have_text("已撤销")
    await expect(operator.get_by_test_id("timeline")).to_contain_text("撤回（已通知机构）")
    # The next bank's staff see it withdrawn, with nothing to answer.
    next_desk = await site.bank_user(next_bank, next_staff, next_password)
    withdrawn = next_desk.get_by_test_id("inbox-row").and_(next_desk.locator('[data-kind="query"]'))
    await withdrawn.get_by_role("link").click()
    await expect(next_desk.get_by_test_id("portal-withdrawn")).to_contain_text("已撤回此指令")
    await expect(next_desk.locator("#answer-form")).to_have_count(0)
    for page in (operator, second, stranger, bank, chief, second_chief, next_desk):
        await page.context.close()


async def test_english_is_a_click_away(site: Site):
    page = await site.officer("officer-en", "operator")
    await page.get_by_role("link", name="EN").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Alert queue")
    await expect(page.locator("html")).to_have_attribute("lang", re.compile("en"))
    await page.context.close()
