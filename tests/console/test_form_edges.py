"""What a form or a browser may send the console that is not what its pages send: never a 500, and never a
time moved to another zone."""

from __future__ import annotations

import contextlib
import html
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from starlette.requests import Request

from services.console import i18n, signin, web
from services.console.api import ApiError
from services.console.portal import ANSWERABLE, _local_time, outcomes
from services.console.session import Sessions, User
from services.console.settings import DEV_SESSION_KEY
from services.coordination.instructions.states import PENDING_ANSWER, Status
from services.institutions import credentials
from services.kit.db import unit_of_work
from tests import factories as f
from tests.console.conftest import UNIT, Site
from tests.coordination.conftest import case_body


def test_a_form_time_without_an_offset_is_the_centres_and_one_with_an_offset_keeps_it():
    assert _local_time("2026-12-04T10:30") == datetime(2026, 12, 4, 10, 30, tzinfo=web.LOCAL).isoformat()
    assert _local_time("2026-12-04T10:30Z") == "2026-12-04T10:30:00+00:00"
    assert _local_time("2026-12-04T10:30-05:00") == "2026-12-04T10:30:00-05:00"
    assert _local_time("noon T tomorrow") == "noon T tomorrow"  # the API names the field and the reason


def test_a_bank_user_locked_out_is_told_so_not_that_the_service_is_down():
    error, status = signin.refused_sign_in(429)
    assert status == 429
    assert i18n.translator("zh")(f"signin_{error}") == "登录失败次数过多，请一分钟后再试。"
    assert i18n.translator("en")(f"signin_{error}") == "Too many failed sign-ins; try again in a minute."
    assert signin.refused_sign_in(401) == signin.refused_sign_in(422) == ("wrong_password", 401)
    assert signin.refused_sign_in(503) == ("unavailable", 503)


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
    # A path that a Location reads as another site's address (an outside trial's `//evil.com/x`).
    for elsewhere in (
        b"http://console//evil.example/x",
        b"http://console///evil.example",
        b"/\\evil.example",
    ):
        assert web.back(_request(elsewhere), "/") == "/", elsewhere


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


def test_a_time_the_api_takes_is_shown_even_where_the_centres_zone_takes_it_past_year_9999():
    last = "9999-12-31T21:00:00+00:00"  # what the API stores of "9999-12-31T23:00:00+02:00"
    assert web.when(last, "%Y-%m-%d %H:%M") == "9999-12-31 21:00 UTC"
    assert web.when("2026-12-04T02:30:00+00:00", "%Y-%m-%d %H:%M") == "2026-12-04 10:30"


def test_a_median_under_a_second_is_not_shown_as_0_s_and_a_long_one_reads_in_minutes_or_hours():
    spans = [None, -0.2, 0.49, 9.96, 10.4, 119.4, 119.6, 3569.0, 3571.0, 9000.0]
    said = ["—", "0.0 s", "0.5 s", "10 s", "10 s", "119 s", "2 min", "59 min", "1.0 h", "2.5 h"]
    assert [web.span(s) for s in spans] == said


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


@pytest.mark.integration
async def test_a_refused_form_comes_back_with_what_was_typed_and_the_same_key(site: Site):
    """The case's issue form and the portal's answer form, refused by the API, are shown again as they
    were sent (a refusal costs no retyping). A refusal issued nothing: the form comes back with a new
    request key or answer id (kept only where the request may have landed, a 5xx), so that what is sent
    corrected is not taken for the refused request sent again."""
    inst, username, password = await site.institution_user("bank")
    officer_api = f.officer(unit=UNIT)
    async with httpx.AsyncClient(base_url=site.coordination, timeout=10) as api:
        body = case_body((inst, f.account("MULE"), "5000.00"))
        case_id = (await api.post("/v1/cases", json=body, headers=officer_api)).json()["id"]
        query = {"kind": "query", "institution_id": inst, "account": f.account("MULE")}
        made = await api.post(f"/v1/cases/{case_id}/instructions", json=query, headers=officer_api)
        assert made.status_code == 201, made.text
        query_id = made.json()["id"]

    async with _operator(site, "o-form") as officer:
        page = (await officer.get(f"/cases/{case_id}")).text
        key = str(uuid.uuid4())
        sent = {
            "csrf": re.search(r'<meta name="csrf" content="([^"]+)"', page).group(1),  # type: ignore[union-attr]
            "kind": "freeze",  # without the document number a freeze needs: refused
            "institution_id": inst,
            "account": f.account("MULE"),
            "amount": "5000.00",
            "reason": "victim still on the phone with the caller",
            "request_id": key,
        }
        again = await officer.post(f"/cases/{case_id}/instructions", data=sent)
        assert again.status_code == 422 and 'data-testid="flash"' in again.text
        assert 'value="victim still on the phone with the caller"' in again.text
        assert _hidden(again.text, "request_id") not in ("", key)

    async with httpx.AsyncClient(base_url=site.console, timeout=10) as bank:
        fields = {"institution": inst, "username": username, "password": password}
        assert (await bank.post("/signin/institution", data=fields)).status_code == 303
        page = (await bank.get(f"/portal/{query_id}")).text
        answer_id = _hidden(page, "response_id")
        answer = {
            "csrf": _hidden(page, "csrf"),
            "response_id": answer_id,
            "outcome": "executed",
            "holder_name": "王某",
            "balance": "40000.00",
            "to_institution": "bank-z",
            "to_account": "6222000011112222",
            "amount": "8000.00",
            "at": "yesterday noon",  # no time: refused, naming the field
        }
        shown = await bank.post(f"/portal/{query_id}/answer", data=answer)
        assert shown.status_code == 422 and 'data-testid="flash"' in shown.text
        for typed in (
            'value="王某"',
            'value="40000.00"',
            'value="6222000011112222"',
            'value="yesterday noon"',
        ):
            assert typed in shown.text
        assert _hidden(shown.text, "response_id") not in ("", answer_id)


@pytest.mark.integration
async def test_a_transfer_answered_twice_in_the_portal_counts_once_in_the_money_flow(site: Site):
    """An outside trial answered the same transfer to two queries of one account in the portal: each answer
    gave it a made-up id, and the flow showed twice the money, with two proposals. The bank's own reference
    of the transfer is required now (a row without it, or without its time, is refused), and a transfer
    listed again under it is recorded once, as on the API."""
    inst, username, password = await site.institution_user("bank")
    mule, onward = f.account("MULE"), f.account("NEXT")
    next_bank, _ = await f.institution(site.sessions, "bank")
    officer_api = f.officer(unit=UNIT)
    async with httpx.AsyncClient(base_url=site.coordination, timeout=10) as api:
        body = case_body((inst, mule, "48000.00"))
        case_id = (await api.post("/v1/cases", json=body, headers=officer_api)).json()["id"]

        async def query() -> str:
            query = {"kind": "query", "institution_id": inst, "account": mule}
            made = await api.post(f"/v1/cases/{case_id}/instructions", json=query, headers=officer_api)
            assert made.status_code == 201, made.text
            return str(made.json()["id"])

        moved = (datetime.now(web.LOCAL) - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S")
        row = {"to_institution": next_bank, "to_account": onward, "amount": "20000.00", "at": moved}
        async with httpx.AsyncClient(base_url=site.console, timeout=10) as bank:
            fields = {"institution": inst, "username": username, "password": password}
            assert (await bank.post("/signin/institution", data=fields)).status_code == 303

            async def answer(query_id: str, reference: str) -> httpx.Response:
                page = (await bank.get(f"/portal/{query_id}")).text
                form = {
                    "csrf": _hidden(page, "csrf"),
                    "response_id": _hidden(page, "response_id"),
                    "outcome": "executed",
                    "holder_name": "王某",
                    "balance": "10.00",
                    **row,
                    "transfer_id": reference,
                }
                return await bank.post(f"/portal/{query_id}/answer", data=form)

            first = await query()
            refused = await answer(first, "")
            assert refused.status_code == 422 and "reference of the transfer" in refused.text
            assert (await answer(first, "TX-77")).status_code == 303
            assert (await answer(await query(), "TX-77")).status_code == 303  # the account queried again
        flow = (await api.get(f"/v1/cases/{case_id}/flow", headers=officer_api)).json()
        received = {n["account"]: Decimal(n["received"]) for n in flow["nodes"]}
        assert received[onward] == Decimal("20000.00")
        proposals = await api.get(
            f"/v1/cases/{case_id}/proposals", params={"status": "open"}, headers=officer_api
        )
        assert [p["account"] for p in proposals.json()] == [onward]


@pytest.mark.integration
async def test_the_issue_form_offers_the_institutions_instructions_reach(site: Site):
    """An officer chooses the institution by its name ("name (id)"), not by an id known by heart: the form
    offers the banks and payment providers, never a telecom (it receives no instruction), with no script;
    an institution the page was opened with (a graph node's) is still filled in."""
    named = f.unique("bank")
    async with unit_of_work(site.sessions) as session:
        await credentials.create_institution(session, institution_id=named, kind="bank", name="昌吉农商银行")
    payment, _ = await f.institution(site.sessions, "payment")
    telecom, _ = await f.institution(site.sessions, "telecom")
    async with httpx.AsyncClient(base_url=site.coordination, timeout=10) as api:
        body = case_body((named, f.account("MULE"), "5000.00"))
        case_id = (await api.post("/v1/cases", json=body, headers=f.officer(unit=UNIT))).json()["id"]

    async with _operator(site, "o-choose") as officer:
        page = (await officer.get(f"/cases/{case_id}", params={"kind": "query", "institution": payment})).text
    offered = dict(re.findall(r'<option value="([^"]+)" data-testid="recipient">([^<]*)</option>', page))
    assert offered[named] == f"昌吉农商银行 ({named})"
    assert offered[payment] == f"{payment} ({payment})"
    assert telecom not in page
    field = re.search(r'<input name="institution_id"[^>]*>', page)
    assert field and f'value="{payment}"' in field.group(0) and 'list="recipients"' in field.group(0)
    assert '<datalist id="recipients">' in page


def test_a_follow_up_forms_key_holds_across_live_renders_and_changes_once_the_case_moves_on():
    user = Sessions(DEV_SESSION_KEY, ttl_s=60, idle_s=60).start(
        kind="officer", subject="o", role="operator", unit="u", token="t", credential_ends_at=time.time() + 60
    )
    stop = {"id": "s-1", "status": "executed", "renewals": 0}
    freeze = {"id": "f-1", "status": "awaiting_approval", "renewals": 0}
    key = web.action_key(user, stop, "freeze", [stop, freeze])
    assert key == web.action_key(user, stop, "freeze", [freeze, stop])  # the next render: the same key
    assert key != web.action_key(user, stop, "extend", [stop, freeze])
    declined = {**freeze, "status": "declined"}  # the freeze refused: asked again, it is a new request
    assert key != web.action_key(user, stop, "freeze", [stop, declined])


def test_the_return_button_is_on_a_freeze_with_money_left_to_return_and_never_on_a_stop_payment():
    """Frozen funds are returned once released (the API refuses a return of a stop-payment), up to what
    coordination says is left: nothing once all released is returned or being returned."""
    from services.console.cases import HOLDING, PENDING

    user = Sessions(DEV_SESSION_KEY, ttl_s=60, idle_s=60).start(
        kind="officer", subject="o", role="operator", unit="u", token="t", credential_ends_at=time.time() + 60
    )
    template = web.templates().get_template("_instruction_actions.html")

    def buttons(i: dict[str, object]) -> str:
        return template.render(
            i=i,
            instructions=[i],
            case={"status": "open"},
            user=user,
            t=i18n.translator("en"),
            HOLDING=HOLDING,
            PENDING=PENDING,
        )

    def hold(kind: str, status: str, left: str | None) -> dict[str, object]:
        return {
            "id": "h-1",
            "case_id": "c-1",
            "kind": kind,
            "status": status,
            "renewals": 0,
            "returnable_amount": left,
        }

    returnable = 'data-testid="return"'
    assert returnable in buttons(hold("freeze", "released", "1200.00"))
    assert returnable in buttons(hold("freeze", "executed", "500.00"))  # released in part, the rest held
    assert returnable not in buttons(hold("freeze", "executed", "0"))  # its release not answered yet
    assert returnable not in buttons(hold("freeze", "released", "0.00"))  # all returned, or under way
    assert returnable not in buttons(hold("stop_payment", "released", None))


@pytest.mark.integration
async def test_accept_sends_exactly_the_ticked_proposals_and_refuses_none_ticked(site: Site):
    """The API reads no list of proposals as every open one, so an officer who unticks them all and presses
    the button must issue nothing; with some ticked, those and only those are stopped."""
    bank, bank_headers = await f.institution(site.sessions, "bank")
    next_bank, _ = await f.institution(site.sessions, "bank")
    op = f.officer(unit=UNIT)
    mule, first, second = f.account("MULE"), f.account("N1"), f.account("N2")
    async with httpx.AsyncClient(base_url=site.coordination, timeout=10) as api:
        case_id = (await api.post("/v1/cases", json=case_body((bank, mule, "5000.00")), headers=op)).json()[
            "id"
        ]
        query = {"kind": "query", "institution_id": bank, "account": mule}
        query_id = (await api.post(f"/v1/cases/{case_id}/instructions", json=query, headers=op)).json()["id"]
        at = f.iso(f.minutes_ago(5))
        transfers = [
            {
                "transfer_id": "t1",
                "to_institution": next_bank,
                "to_account": first,
                "amount": "3000.00",
                "at": at,
            },
            {
                "transfer_id": "t2",
                "to_institution": next_bank,
                "to_account": second,
                "amount": "1000.00",
                "at": at,
            },
        ]
        answer = {
            "response_id": str(uuid.uuid4()),
            "outcome": "executed",
            "query_result": {"holder": {"name": "Zhang"}, "balance": "10.00", "transfers": transfers},
        }
        answered = await api.post(
            f"/v1/institution/instructions/{query_id}/responses", json=answer, headers=bank_headers
        )
        assert answered.status_code == 200, answered.text
        proposals = (
            await api.get(f"/v1/cases/{case_id}/proposals", params={"status": "open"}, headers=op)
        ).json()
        ids = {p["account"]: p["id"] for p in proposals}
        assert set(ids) == {first, second}

    async def stopped() -> list[str]:
        async with httpx.AsyncClient(base_url=site.coordination, timeout=10) as api:
            rows = (await api.get(f"/v1/cases/{case_id}/instructions", headers=op)).json()
        return sorted(r["account"] for r in rows if r["kind"] == "stop_payment")

    async with _operator(site, "o-accept") as officer:
        csrf = _hidden((await officer.get(f"/cases/{case_id}")).text, "csrf")
        url, json = f"/cases/{case_id}/proposals/accept", {"Accept": "application/json"}

        none = await officer.post(url, data={"csrf": csrf}, headers=json)
        assert none.status_code == 422 and none.json()["message"].endswith(
            "未勾选任何下一层止付，未下发任何指令。"
        )
        assert await stopped() == []

        one = await officer.post(url, data={"csrf": csrf, "proposal_id": str(ids[second])}, headers=json)
        assert one.status_code == 200 and one.json()["ok"], one.text
        assert await stopped() == [second]


@contextlib.asynccontextmanager
async def _operator(site: Site, subject: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the console signed in as an operator of the unit (the sign-in answered 303)."""
    async with httpx.AsyncClient(base_url=site.console, timeout=10) as officer:
        signed = await officer.post(
            "/signin/officer", data={"subject": subject, "unit": UNIT, "role": "operator"}
        )
        assert signed.status_code == 303
        yield officer


def _officer_user() -> User:
    return Sessions(DEV_SESSION_KEY, ttl_s=60, idle_s=60).start(
        kind="officer", subject="o", role="operator", unit="u", token="t", credential_ends_at=time.time() + 60
    )


def test_a_release_or_return_reads_as_the_amount_released_or_returned_not_held():
    """The API reads an answer's `held_amount` of a release or return as the amount released or returned:
    the bank's form and the case page say so, where a hold's is the amount held."""
    from services.console.cases import HOLDING, PENDING

    t = i18n.translator("zh")
    user = _officer_user()

    def instruction(kind: str, held: str) -> dict[str, object]:
        return {
            "id": f"{kind}-1",
            "case_id": "c-1",
            "kind": kind,
            "status": "executed",
            "amount": "1000.00",
            "held_amount": held,
            "renewals": 0,
        }

    rows = [
        instruction("freeze", "1000.00"),
        instruction("release", "400.00"),
        instruction("return_funds", "300.00"),
    ]
    case_page = web.templates().get_template("_case_instructions.html")
    html = case_page.render(
        instructions=rows, case={"status": "closed"}, user=user, t=t, HOLDING=HOLDING, PENDING=PENDING
    )
    assert re.findall(r">\s*(已\S+ ¥[\d,.]+)\s*<", html) == [
        "已控制 ¥1,000.00",
        "已解冻 ¥400.00",
        "已返还 ¥300.00",
    ]

    portal = web.templates().get_template("portal_instruction.html")
    for kind, label in (("freeze", "已控制金额"), ("release", "已解冻金额"), ("return_funds", "已返还金额")):
        message = {
            "instruction_id": "i-1",
            "kind": kind,
            "account": "A1",
            "amount": "1000.00",
            "legal_basis": {"case_number": "CJ-1"},
        }
        page = portal.render(
            user=user,
            t=t,
            lang="zh",
            path="/portal/i-1",
            row={"status": "delivered", "message": message},
            answerable=True,
            outcomes=["executed"],
            response_id="r-1",
            typed={},
        )
        found = re.search(r'<label[^>]*>([^<]+)<input name="held_amount"', page)
        assert found and found.group(1).strip() == label, kind


def test_the_overdue_list_names_the_deadline_each_instruction_is_late_on():
    """An instruction late on its acknowledgement is listed with the acknowledgement's deadline (passed),
    not with an execution deadline still to come."""
    now = datetime.now(web.LOCAL)
    late_ack = {
        "id": "q-1",
        "case_id": "c-1",
        "case_number": "CJ-1",
        "kind": "query",
        "status": "delivered",
        "institution_id": "bank-a",
        "overdue": "acknowledgement",
        "ack_due_at": (now - timedelta(minutes=5)).isoformat(),
        "exec_due_at": (now + timedelta(hours=1)).isoformat(),
    }
    late_exec = late_ack | {
        "id": "q-2",
        "status": "acknowledged",
        "overdue": "execution",
        "exec_due_at": (now - timedelta(minutes=1)).isoformat(),
    }
    html = (
        web.templates()
        .get_template("_supervisor.html")
        .render(
            waiting=[],
            overdue=[late_ack, late_exec],
            late_institutions=[("bank-a", 2)],
            lapsing=[],
            user=_officer_user(),
            t=i18n.translator("en"),
        )
    )
    assert re.findall(r'<td[^>]*>(ack by|execute by) <time data-due="([^"]+)"', html) == [
        ("ack by", web.iso(late_ack["ack_due_at"])),
        ("execute by", web.iso(late_exec["exec_due_at"])),
    ]


def test_the_overdue_badge_is_on_an_instruction_still_unanswered_only():
    """The API keeps the deadline an instruction was late on after it is answered (the audit of it); the
    case page calls it overdue only while the institution's answer is still awaited."""
    from services.console.cases import HOLDING, PENDING

    def row(status: str) -> dict[str, object]:
        return {"id": f"s-{status}", "case_id": "c-1", "kind": "stop_payment", "status": status}

    rows = [row(s) | {"overdue": "execution", "renewals": 0} for s in ("delivered", "executed", "released")]
    html = (
        web.templates()
        .get_template("_case_instructions.html")
        .render(
            instructions=rows,
            case={"status": "closed"},
            user=_officer_user(),
            t=i18n.translator("en"),
            HOLDING=HOLDING,
            PENDING=PENDING,
        )
    )
    badges = {
        m.group(1): "badge late" in m.group(2)
        for m in re.finditer(r'data-status="(\w+)"(.*?)</tr>', html, re.S)
    }
    assert badges == {"delivered": True, "executed": False, "released": False}


def test_the_portal_offers_its_form_in_exactly_the_statuses_coordination_takes_an_answer_in():
    # The console knows coordination through its API only and keeps the list itself: they must agree.
    assert set(ANSWERABLE) == {*PENDING_ANSWER, Status.FAILED}
    assert outcomes("delivered")[0] == "acknowledged"
    assert "acknowledged" not in outcomes("acknowledged") and outcomes("acknowledged")[0] == "executed"


@pytest.mark.integration
async def test_an_address_typed_wrong_gets_a_page_naming_the_field_and_the_script_json(site: Site):
    # A newcomer pasted an alert's incident_id (a UUID) into /incidents/…, which takes the incident's own id:
    # the browser showed the API's raw JSON.
    async with _operator(site, "o-typed") as officer:
        page = await officer.get(f"/incidents/{uuid.uuid4()}")
        assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
        shown = re.search(r'data-testid="error-message">([^<]+)<', page.text)
        assert shown and shown.group(1).startswith("path.incident_id: String should match pattern")
        script = await officer.get(f"/incidents/{uuid.uuid4()}", headers={"Accept": "application/json"})
        assert script.status_code == 422 and script.json()["error"]["code"] == "invalid_input"
        assert script.json()["ok"] is False and script.json()["message"].startswith("path.incident_id: ")
        # The queue's filters: a value typed wrong is named, not shown as the default queue; the form's
        # empty fields are the defaults.
        for query, field in (
            ("status=bogus", "query.status: Input should be 'open'"),
            ("typology=scam", "query.typology: Input should be 'call_then_transfer'"),
            ("window=2d", "query.window: Input should be '1h'"),
            ("min_score=1.5", "query.min_score: Value error, a score from 0 to 1"),
            ("min_score=abc", "query.min_score: Value error, a score from 0 to 1"),
        ):
            wrong = await officer.get(f"/?{query}", headers={"Accept": "text/html"})
            shown = re.search(r'data-testid="error-message">([^<]+)<', wrong.text)
            assert wrong.status_code == 422 and shown and html.unescape(shown.group(1)).startswith(field), (
                query
            )
        empty = await officer.get("/?status=&typology=&min_score=&window=", headers={"Accept": "text/html"})
        assert empty.status_code == 200
        chosen = await officer.get("/?status=all&min_score=5e-1&window=7d", headers={"Accept": "text/html"})
        assert chosen.status_code == 200 and 'value="0.5"' in chosen.text  # the form shows it as read


@pytest.mark.integration
async def test_no_such_page_and_a_wrong_method_get_the_consoles_page(site: Site):
    # A newcomer's trial: the console answered an address typed wrong, or a form posted to a page that
    # takes none, with the API's raw JSON.
    async with _operator(site, "o-lost") as officer:
        page = await officer.get("/no-such-page", headers={"Accept": "text/html"})
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "未找到" in page.text and "o-lost" in page.text  # the console's page, signed in
        # Every page says once in which zone its times are (a newcomer read them as UTC), and it is the
        # zone they are shown in.
        zone = re.search(r'data-testid="zone">([^<]+)<', page.text)
        assert zone and zone.group(1) == "北京时间 UTC+08:00"
        assert web.when("2026-12-07T00:00:00+00:00") == "12-07 08:00:00"
        wrong = await officer.post("/audit", data={"x": "1"}, headers={"Accept": "text/html"})
        assert wrong.status_code == 405 and wrong.headers["content-type"].startswith("text/html")
        assert "此页面不接受该请求" in wrong.text and "GET" in wrong.headers["allow"]
        # A mounted app's own 405 (the static files) keeps the methods it named.
        static = await officer.post("/static/favicon.svg", headers={"Accept": "text/html"})
        assert static.status_code == 405 and static.headers["allow"] == "GET, HEAD"
        script = await officer.get("/no-such-page", headers={"Accept": "application/json"})
        assert script.status_code == 404 and script.json()["error"]["code"] == "not_found"
        # An operator's typo on a page they may not see: told they may not, not that the field is wrong.
        refused = await officer.get("/audit?days=abc", headers={"Accept": "text/html"})
        shown = re.search(r'data-testid="error-message">([^<]+)<', refused.text)
        assert refused.status_code == 403 and shown and shown.group(1).endswith("needs auditor")


def test_an_audit_entrys_values_read_as_values_not_python():
    # The auditor's page showed `alerts: ['a63b…']` and `outcome: None` (a newcomer's trial).
    assert web.recorded(["a63b", "77c0"]) == "a63b, 77c0"
    assert web.recorded(None) == web.recorded([]) == "—"
    assert web.recorded({"amount": "25.00", "ok": True}) == '{"amount":"25.00","ok":true}'
    assert web.recorded("converted") == "converted" and web.recorded(3) == "3"
    assert web.recorded(False) == "false"
