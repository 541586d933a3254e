"""What a queue row shows of its incident's top alert."""

from __future__ import annotations

import html

from services.console import i18n, reasons, web
from services.console.session import User


def test_a_row_shows_every_reason_of_the_top_alert_the_call_too_when_it_comes_third():
    # A trial's "call then transfer" alert said its call third; the row showed two reasons and no call.
    said = [
        "48,000 CNY is 160 times this person's typical payment",
        "the payee account: first seen under a minute ago",
        "the person had a 41-minute call from a number that had never called before and paid to a payee "
        "never paid before 3 min after the call ended",
    ]
    item = {
        "id": "i-1",
        "open": True,
        "max_score": 0.97,
        "typologies": ["impersonation_police"],
        "kind": "episode",
        "victims": 1,
        "alerts": 1,
        "new": 1,
        "case_ids": [],
        "top": {"reasons": said},
        "amount_at_risk": "48000.00",
        "recommended_actions": ["warn_citizen"],
        "first_received_at": "2026-12-08T01:00:00Z",
        "last_received_at": "2026-12-08T01:00:00Z",
    }
    user = User("officer", "o", "operator", "u", "token", "c", ends_at=0.0, seen_at=0.0)
    row = html.unescape(
        web.templates()
        .get_template("_queue.html")
        .render(user=user, lang="zh", t=i18n.translator("zh"), items=[item], where={})
    )
    for reason in said:
        assert reasons.in_language(reason, "zh") in row
    assert "通话" in reasons.in_language(said[2], "zh")  # the third is the call, in the reader's language
