"""The citizen's answer page in a real browser, as on a small phone with JavaScript off: Mandarin,
Uyghur and Kazakh (the last two right to left), what to do next on every page, and the one-time
rules: an answer is taken once, a used or unknown link says so and nothing about the person."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import ViewportSize, expect

from services.kit.db import unit_of_work
from services.notifier.warnings import repository, tokens
from tests import factories as f
from tests.console.conftest import Site, shot

pytestmark = pytest.mark.integration
PHONE: ViewportSize = {"width": 360, "height": 740}


async def _warning(site: Site, language: str) -> tuple[str, str]:
    """A warning as the notifier makes it; returns the person's phone and the link's token."""
    token, digest = tokens.new_token()
    now, phone = datetime.now(UTC), f.phone()
    values = {
        "id": uuid.uuid4(),
        "person": f.unique("person"),
        "episode": f.unique("episode"),
        "phone": phone,
        "language": language,
        "typology": "call_then_transfer",
        "score": 0.95,
        "first_alert_id": uuid.uuid4(),
        "event_time": now,
        "status": "open",
        "token_sha256": digest,
        "token_expires_at": now + timedelta(hours=1),
        "created_at": now,
    }
    async with unit_of_work(site.sessions) as session:
        assert await repository.insert_warning(session, values)
    return phone, token


@pytest.mark.parametrize(
    ("language", "direction", "safe", "thanks"),
    [
        ("zh", "ltr", "我很安全", "谢谢"),
        ("ug", "rtl", "مەن ئامان", "رەھمەت"),
        ("kk", "rtl", "مەن قاۋىپسىزبىن", "راحمەت"),
    ],
)
async def test_the_answer_page_in_each_language(
    site: Site, language: str, direction: str, safe: str, thanks: str
):
    phone, token = await _warning(site, language)
    context = await site.person(viewport=PHONE, js=False)
    page = await context.new_page()
    link = f"{site.notifier}/a/{token}?l={language}"
    await page.goto(link)
    await expect(page.locator("html")).to_have_attribute("dir", direction)
    await expect(page.locator("body")).to_contain_text("96110")
    await expect(page.get_by_role("link", name="96110")).to_have_attribute("href", "tel:96110")
    assert not f.shows_phone(await page.content(), phone)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
    await shot(page, f"citizen-{language}")

    await page.get_by_role("button", name=safe).click()
    await expect(page.get_by_test_id("result")).to_contain_text(thanks)
    await expect(page.locator("body")).to_contain_text("96110")
    await shot(page, f"citizen-{language}-answered")
    async with site.sessions() as s:
        warning = await repository.by_token(s, tokens.digest(token))
    assert warning is not None and warning.answer == "safe" and warning.outcome == "dissuaded"

    # The link takes one answer (only "defrauded" may follow "safe"): posted again, the page says so.
    again = await page.request.post(link, form={"answer": "safe"})
    assert again.status == 409
    assert {"zh": "已使用", "ug": "ئىشلىتىلىپ", "kk": "قولدانىلىپ"}[language] in await again.text()
    await context.close()


async def test_an_unknown_link_reveals_nothing(site: Site):
    context = await site.person(viewport=PHONE, js=False)
    page = await context.new_page()
    await page.goto(f"{site.notifier}/a/{'x' * 43}")
    await page.get_by_role("button", name="我很安全").click()
    await expect(page.get_by_test_id("result")).to_have_text("此链接无效。")
    await context.close()
