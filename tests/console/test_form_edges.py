"""What a form or a browser may send the console that is not what its pages send: never a 500, and never a
time moved to another zone."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request

from services.console import i18n, web
from services.console.api import ApiError
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


def test_a_refused_close_names_what_keeps_the_case_open_in_the_officers_language():
    blocking = [
        {
            "instruction_id": "0a1b2c3d-0000-4000-8000-000000000001",
            "kind": "stop_payment",
            "status": "executed",
        },
        {
            "instruction_id": "9f8e7d6c-0000-4000-8000-000000000002",
            "kind": "freeze",
            "status": "awaiting_approval",
        },
    ]
    refused = ApiError(409, "conflict", "case CJ-1 has ...", {"current_status": "open", "blocking": blocking})
    zh = web.refusal(i18n.translator("zh"), refused)
    assert zh.startswith("操作被拒绝 (409): 案件尚有未了结的资金处置")
    assert zh.endswith("紧急止付 0a1b2c3d 已执行; 快速冻结 9f8e7d6c 待审批")
    en = web.refusal(i18n.translator("en"), refused)
    assert "release the holds" in en and en.endswith("Freeze 9f8e7d6c awaiting approval")
    # Any other refusal reads as the API said it.
    other = ApiError(409, "conflict", "case CJ-1 is closed", {"current_status": "closed"})
    assert web.refusal(i18n.translator("en"), other) == "Refused (409): case CJ-1 is closed"
