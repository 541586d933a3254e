"""The citizen's warning on the case page: the person's own answer and, beside it, the phone desk's word
that they are being defrauded, in each language."""

from __future__ import annotations

import re

from services.console import i18n, web


def _answer_cells(lang: str, warning: dict[str, object]) -> list[str]:
    html = (
        web.templates()
        .get_template("_case_warnings.html")
        .render(warnings=[warning], t=i18n.translator(lang))
    )
    cells = re.findall(r'<td data-testid="answer">(.*?)</td>', html, flags=re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip() for c in cells]


def _warning(answer: str | None, desk_defrauded_at: str | None) -> dict[str, object]:
    return {
        "created_at": "2026-12-06T02:00:00+00:00",
        "language": "zh",
        "first_delivered_at": "2026-12-06T02:00:05+00:00",
        "answer": answer,
        "outcome": "reached_too_late",
        "desk_defrauded_at": desk_defrauded_at,
    }


def test_the_desks_word_shows_where_the_persons_answer_does():
    desk = _warning(None, "2026-12-06T02:10:00+00:00")  # 10:10 at the centre (UTC+8)
    assert _answer_cells("zh", desk) == ["未回复 接警台：本人称正在被骗 10:10:00"]
    assert _answer_cells("en", desk) == ["no answer Phone desk: the person is being defrauded 10:10:00"]
    both = _warning("safe", "2026-12-06T02:10:00+00:00")  # "safe" to the SMS, then the truth to the desk
    assert _answer_cells("en", both) == ["I am safe Phone desk: the person is being defrauded 10:10:00"]
    assert _answer_cells("en", _warning("defrauded", None)) == ["I am being defrauded"]
