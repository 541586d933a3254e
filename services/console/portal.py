"""The institution portal: a bank's staff see the instructions addressed to their institution and
answer them, with the same answers the API takes (acknowledged, executed with the amount held,
partially executed, rejected, account not found; a query's holder, balance and transfers out)."""

import itertools
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import Response

from services.console import web
from services.console.api import ApiError
from services.console.session import User

InstructionId = Annotated[str, Path(pattern="^[0-9a-f-]{36}$")]
Field = Annotated[str, Form(max_length=200)]
OUTCOMES = ("acknowledged", "executed", "partially_executed", "rejected", "account_not_found")
# The statuses in which coordination takes an answer from the institution (`failed`: its delivery was given
# up, and an answer shows the institution had it after all). Any other is settled (answered, lapsed,
# released, withdrawn): the page says so instead of offering a form for an answer that changes nothing.
ANSWERABLE = ("issued", "delivered", "acknowledged", "failed")


def outcomes(status: str) -> list[str]:
    """The answers the form offers: acknowledged already, it waits for the final one (coordination refuses
    a second acknowledgement)."""
    return [o for o in OUTCOMES if o != status]


async def live_data(request: Request, user: User, status: str | None = None) -> dict[str, Any]:
    rows = (
        await web.console(request)
        .coordination(user)
        .get("/v1/institution/instructions", status=status, limit=200)
    )
    return {"rows": rows["items"]}


async def live_pieces(request: Request, user: User) -> dict[str, str]:
    data = await live_data(request, user)
    return {"inbox": web.fragment(request, "_portal_inbox.html", user=user, **data)}


def _local_time(when: str) -> str:
    """A form's date-time: the browser's `datetime-local` has no offset, and means the centre's time; one
    typed with its own offset (or Z) keeps it; anything else goes on as typed, for the API to name."""
    try:
        parsed = datetime.fromisoformat(when)
    except ValueError:
        return when
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=web.LOCAL)).isoformat()


def _transfers(
    to_institution: list[str], to_account: list[str], amount: list[str], at: list[str], transfer_id: list[str]
) -> list[dict[str, Any]]:
    """The form's filled rows. Each names the bank's own reference of the transfer and its time: the
    reference is what keeps a transfer listed again (a second query, the form sent again) from counting
    twice in the case's money flow, and a made-up one did; a time left out is not the time of the answer."""
    out = []
    for n, (inst, acc, amt) in enumerate(zip(to_institution, to_account, amount, strict=False)):
        if not (inst.strip() or acc.strip() or amt.strip()):
            continue
        when = at[n].strip() if n < len(at) else ""
        ident = transfer_id[n].strip() if n < len(transfer_id) else ""
        if not ident:
            raise ValueError(f"transfer {n + 1}: the bank's reference of the transfer is required")
        if not when:
            raise ValueError(f"transfer {n + 1}: the time of the transfer is required")
        out.append(
            {
                "transfer_id": ident,
                "to_institution": inst.strip(),
                "to_account": acc.strip(),
                "amount": amt.strip(),
                "at": _local_time(when),
            }
        )
    return out


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)
    Staff = Annotated[User, Depends(web.institution_staff)]

    @api.get("/portal")
    async def inbox(
        request: Request, user: Staff, status: Annotated[str | None, Query(max_length=24)] = None
    ) -> Response:
        data = await live_data(request, user, status)
        return web.render(request, "portal.html", user=user, status_filter=status or "", **data)

    @api.get("/portal/{instruction_id}")
    async def one(request: Request, instruction_id: InstructionId, user: Staff) -> Response:
        return await _answer_page(request, user, instruction_id, response_id=str(uuid.uuid4()))

    @api.post("/portal/{instruction_id}/answer")
    async def answer(
        request: Request,
        instruction_id: InstructionId,
        user: Staff,
        outcome: Annotated[
            str, Form(pattern="^(acknowledged|executed|partially_executed|rejected|account_not_found)$")
        ],
        response_id: Annotated[uuid.UUID, Form()],
        csrf: Field = "",
        held_amount: Field = "",
        reason: Annotated[str, Form(max_length=1000)] = "",
        holder_name: Field = "",
        balance: Field = "",
        to_institution: Annotated[list[str] | None, Form()] = None,
        to_account: Annotated[list[str] | None, Form()] = None,
        amount: Annotated[list[str] | None, Form()] = None,
        at: Annotated[list[str] | None, Form()] = None,
        transfer_id: Annotated[list[str] | None, Form()] = None,
    ) -> Response:
        to = f"/portal/{instruction_id}"
        typed = {
            "outcome": outcome,
            "held_amount": held_amount,
            "reason": reason,
            "holder_name": holder_name,
            "balance": balance,
            "transfers": list(
                itertools.zip_longest(
                    to_institution or [],
                    to_account or [],
                    amount or [],
                    at or [],
                    transfer_id or [],
                    fillvalue="",
                )
            ),
        }

        async def page(key: str, notice: dict[str, str], status: int) -> Response:
            return await _answer_page(request, user, instruction_id, key, typed, status=status, notice=notice)

        async def refused(exc: ApiError) -> Response:
            return await web.shown_again(request, exc, to=to, key=str(response_id), page=page)

        body: dict[str, Any] = {"response_id": str(response_id), "outcome": outcome}
        if held_amount.strip():
            body["held_amount"] = held_amount.strip()
        if reason.strip():
            body["reason"] = reason.strip()
        if holder_name.strip() or balance.strip():
            try:
                transfers = _transfers(
                    to_institution or [], to_account or [], amount or [], at or [], transfer_id or []
                )
            except ValueError as exc:
                return await refused(ApiError(422, "invalid_input", str(exc)))
            body["query_result"] = {
                "holder": {"name": holder_name.strip()},
                "balance": balance.strip() or "0",
                "transfers": transfers,
            }
        try:
            web.check_csrf(user, csrf)
            await (
                web.console(request)
                .coordination(user)
                .post(f"/v1/institution/instructions/{instruction_id}/responses", body)
            )
        except ApiError as exc:
            return await refused(exc)
        return web.done(request, to="/portal", ok=f"answered_{outcome}")

    return api


async def _answer_page(
    request: Request,
    user: User,
    instruction_id: str,
    response_id: str,
    typed: dict[str, Any] | None = None,
    *,
    status: int = 200,
    notice: dict[str, str] | None = None,
) -> Response:
    row = await web.console(request).coordination(user).get(f"/v1/institution/instructions/{instruction_id}")
    return web.render(
        request,
        "portal_instruction.html",
        user=user,
        status=status,
        notice=notice,
        row=row,
        answerable=row["status"] in ANSWERABLE,
        outcomes=outcomes(row["status"]),
        response_id=response_id,
        typed=typed or {},
        now=datetime.now(UTC),
    )
