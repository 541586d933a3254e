"""What a form or a browser may send the console that is not what its pages send: never a 500, and never a
time moved to another zone."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request

from services.console import web
from services.console.portal import _local_time


def test_a_form_time_without_an_offset_is_the_centres_and_one_with_an_offset_keeps_it():
    assert _local_time("2026-12-04T10:30") == datetime(2026, 12, 4, 10, 30, tzinfo=web.LOCAL).isoformat()
    assert _local_time("2026-12-04T10:30Z") == "2026-12-04T10:30:00+00:00"
    assert _local_time("2026-12-04T10:30-05:00") == "2026-12-04T10:30:00-05:00"
    assert _local_time("noon T tomorrow") == "noon T tomorrow"  # the API names the field and the reason


def _request(referer: bytes) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "server": ("console", 80),
        "path": "/cases/1/notes",
        "query_string": b"",
        "headers": [(b"host", b"console"), (b"referer", referer)],
    }
    return Request(scope)


def test_an_action_goes_back_to_its_page_and_never_fails_on_a_referer_that_is_no_url():
    assert web.back(_request(b"http://console/cases/1?tab=notes"), "/") == "/cases/1?tab=notes"
    assert web.back(_request(b"https://elsewhere.example/x"), "/") == "/"
    assert web.back(_request(b"http://["), "/cases/1") == "/cases/1"
