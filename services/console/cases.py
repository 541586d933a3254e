"""Case pages: the timeline, the money-flow graph, instructions with their deadlines and the buttons the
law provides (query, stop-payment, freeze, extend, release, return), proposed next hops accepted in
one action, the citizen's warning and answer, notes; and the actions on instructions (approve,
decline, cancel) shared with the supervisor's view."""

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import Response

from services.console import graph, i18n, web
from services.console.api import ApiError
from services.console.session import User
from streams.schemas.events import NonBlank

CaseId = Annotated[str, Path(pattern="^[0-9a-f-]{36}$")]
InstructionId = Annotated[str, Path(pattern="^[0-9a-f-]{36}$")]
Csrf = Annotated[str, Form(max_length=200)]
Text = Annotated[str, Form(max_length=2000)]
HOLDING = ("executed", "partially_executed")
PENDING = ("issued", "delivered", "acknowledged")


async def _warnings(request: Request, user: User, alert_ids: list[str]) -> list[dict[str, Any]]:
    """The citizen warnings of the case's alerts, from the notifier (the case page works without it)."""
    if not alert_ids:
        return []
    try:
        found = await web.console(request).notifier(user).get("/v1/warnings", alert_id=alert_ids[:50])
    except ApiError:
        return []
    return list(found.get("items", []))


async def _recipients(request: Request, user: User) -> list[dict[str, Any]]:
    """The institutions the issue form offers: the banks and payment providers instructions reach (each of
    its kinds goes to those only; a telecom receives none). A choice, not a rule: an id typed is sent as
    typed, for the API to refuse; and the form works without the list (its first page: 500)."""
    api = web.console(request).coordination(user)
    try:
        found = await api.get("/v1/institutions", kind=["bank", "payment"], limit=500)
    except ApiError:
        return []
    return [i for i in found["items"] if i["receives_instructions"]]


# The case page shows the newest entries of its timeline, and links the audit log for the rest.
TIMELINE_SHOWN = 500
ISSUED_HERE = ("query", "stop_payment", "freeze")  # the kinds of the page's issue form


async def live_data(request: Request, user: User, case_id: str) -> dict[str, Any]:
    api = web.console(request).coordination(user)
    case, flow, proposals, timeline = await asyncio.gather(
        api.get(f"/v1/cases/{case_id}"),
        api.get(f"/v1/cases/{case_id}/flow"),
        api.get(f"/v1/cases/{case_id}/proposals", status="open"),
        api.get(f"/v1/cases/{case_id}/timeline", newest="true", limit=TIMELINE_SHOWN),
    )
    instructions = case["instructions"]
    return {
        "case": case,
        "flow": flow,
        "layout": graph.layout(flow["nodes"], instructions),
        "proposals": proposals,
        "instructions": sorted(instructions, key=lambda i: i["created_at"], reverse=True),
        "timeline": list(reversed(timeline["items"])),
        "timeline_cut": len(timeline["items"]) == TIMELINE_SHOWN,  # older entries: in the audit log
        "HOLDING": HOLDING,
        "PENDING": PENDING,
    }


async def live_pieces(request: Request, user: User, case_id: str) -> dict[str, str]:
    data = await live_data(request, user, case_id)
    return {
        name: web.fragment(request, f"_case_{name}.html", user=user, **data)
        for name in ("totals", "flow", "instructions", "proposals", "timeline")
    }


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)
    Officer = Annotated[User, Depends(web.officer)]

    @api.get("/cases")
    async def case_list(
        request: Request,
        user: Officer,
        status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    ) -> Response:
        rows = await web.console(request).coordination(user).get("/v1/cases", status=status, limit=200)
        return web.render(request, "cases.html", user=user, cases=rows, status_filter=status or "")

    @api.get("/cases/{case_id}")
    async def case_page(
        request: Request,
        case_id: CaseId,
        user: Officer,
        kind: Annotated[str | None, Query(max_length=20)] = None,
        institution: Annotated[str | None, Query(max_length=40)] = None,
        account: Annotated[str | None, Query(max_length=34)] = None,
        amount: Annotated[str | None, Query(max_length=20)] = None,
    ) -> Response:
        prefill = {
            "kind": kind if kind in ISSUED_HERE else "stop_payment",
            "institution": institution or "",
            "account": account or "",
            "amount": amount or "",
        }
        return await _case_page(request, user, case_id, prefill)

    @api.post("/cases/{case_id}/instructions")
    async def issue(
        request: Request,
        case_id: CaseId,
        user: Officer,
        kind: Annotated[str, Form(pattern="^(query|stop_payment|freeze|extend|release|return_funds)$")],
        csrf: Csrf = "",
        institution_id: Annotated[str, Form(max_length=40)] = "",
        account: Annotated[str, Form(max_length=34)] = "",
        amount: Annotated[str, Form(max_length=20)] = "",
        document_number: Annotated[str, Form(max_length=64)] = "",
        parent_id: Annotated[str, Form(max_length=36)] = "",
        reason: Text = "",
        request_id: Annotated[str, Form(max_length=36)] = "",
    ) -> Response:
        body = {
            "kind": kind,
            "institution_id": institution_id.strip() or None,
            "account": account.strip() or None,
            "amount": amount.strip() or None,
            "document_number": document_number.strip() or None,
            "parent_id": parent_id or None,
            "reason": reason.strip() or None,
            "request_id": request_id or None,  # (the API names it if it is no UUID)
        }
        typed = {  # the page's issue form as it was sent, shown again if it is refused
            "kind": kind,
            "institution": institution_id,
            "account": account,
            "amount": amount,
            "document_number": document_number,
            "reason": reason,
        }

        async def page(key: str, notice: dict[str, str], status: int) -> Response:
            prefill = typed | {"request_id": key}
            return await _case_page(request, user, case_id, prefill, status=status, notice=notice)

        return await _act(
            request,
            user,
            csrf,
            f"/v1/cases/{case_id}/instructions",
            body,
            ok=f"issued_{kind}",
            to=f"/cases/{case_id}",
            shown_again=(request_id, page) if kind in ISSUED_HERE and not parent_id else None,
        )

    @api.post("/cases/{case_id}/proposals/accept")
    async def accept(
        request: Request,
        case_id: CaseId,
        user: Officer,
        csrf: Csrf = "",
        proposal_id: Annotated[list[int] | None, Form()] = None,
    ) -> Response:
        to = f"/cases/{case_id}"
        if not proposal_id:
            # Nothing ticked is nothing to accept: the API takes no list for every open proposal, even
            # ones that came after the page was drawn, so the console never sends one.
            t = i18n.translator(web.language(request))
            none = ApiError(422, "none_ticked", t("proposals_none_ticked"))
            return web.done(request, to=web.back(request, to), error=none)
        # The ids ticked, exactly. (The API takes no request key for an accept: a second one of the same
        # proposals is refused, 409, as they are accepted already.)
        body = {"proposal_ids": proposal_id, "follow_with_query": True}
        return await _act(
            request,
            user,
            csrf,
            f"/v1/cases/{case_id}/proposals/accept",
            body,
            ok="proposals_accepted",
            to=to,
        )

    @api.post("/cases/{case_id}/notes")
    async def note(
        request: Request,
        case_id: CaseId,
        user: Officer,
        text: Annotated[NonBlank, Form(max_length=10_000)],
        csrf: Csrf = "",
    ) -> Response:
        return await _act(
            request,
            user,
            csrf,
            f"/v1/cases/{case_id}/notes",
            {"text": text},
            ok="note_added",
            to=f"/cases/{case_id}",
        )

    @api.post("/cases/{case_id}/close")
    async def close(
        request: Request,
        case_id: CaseId,
        user: Officer,
        outcome: Annotated[str, Form(pattern="^(confirmed_fraud|false_alarm|undetermined)$")],
        csrf: Csrf = "",
    ) -> Response:
        body = {"status": "closed", "outcome": outcome}
        return await _act(
            request,
            user,
            csrf,
            f"/v1/cases/{case_id}",
            body,
            ok="case_closed_done",
            to=f"/cases/{case_id}",
            method="PATCH",
        )

    @api.post("/instructions/{instruction_id}/{decision}")
    async def decide(
        request: Request,
        instruction_id: InstructionId,
        decision: Annotated[str, Path(pattern="^(approve|decline|cancel|withdraw)$")],
        user: Officer,
        csrf: Csrf = "",
        note: Text = "",
    ) -> Response:
        body = {"note": note.strip() or None}
        return await _act(
            request,
            user,
            csrf,
            # (a withdrawal is the API's cancel of an instruction already sent)
            f"/v1/instructions/{instruction_id}/{'cancel' if decision == 'withdraw' else decision}",
            body,
            ok=f"decided_{decision}",
            to=web.back(request, "/supervisor"),
        )

    return api


async def _case_page(
    request: Request,
    user: User,
    case_id: str,
    prefill: dict[str, str],
    *,
    status: int = 200,
    notice: dict[str, str] | None = None,
) -> Response:
    data = await live_data(request, user, case_id)
    warnings = await _warnings(request, user, data["case"]["alert_ids"])
    recipients = await _recipients(request, user) if data["case"]["status"] == "open" else []
    return web.render(
        request,
        "case.html",
        user=user,
        status=status,
        notice=notice,
        prefill=prefill,
        warnings=warnings,
        recipients=recipients,
        now=datetime.now(UTC),
        **data,
    )


async def _act(
    request: Request,
    user: User,
    csrf: str,
    path: str,
    body: Any,
    *,
    ok: str,
    to: str,
    method: str = "POST",
    shown_again: tuple[str, web.ShowAgain] | None = None,
) -> Response:
    """Call the API for a form and answer with its outcome; `shown_again` (the form's key and its page):
    a refused form comes back as it was sent (`web.shown_again`)."""
    try:
        web.check_csrf(user, csrf)
        await web.console(request).coordination(user).call(method, path, json=body)
    except ApiError as exc:
        if shown_again is None:
            return web.done(request, to=web.back(request, to), error=exc)
        key, page = shown_again
        return await web.shown_again(request, exc, to=web.back(request, to), key=key, page=page)
    return web.done(request, to=web.back(request, to), ok=ok)
