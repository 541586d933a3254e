"""Routes of the citizen's answer link, and of telecoms telling us subscribers' language and app."""

from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.institutions.credentials import Caller
from services.kit.errors import Conflict, Forbidden, NotFound
from services.kit.ratelimit import RateLimitSettings, client_address, per_minute
from services.notifier.warnings import page, service
from services.notifier.warnings.schemas import AnswerIn, AnswerOut, ContactIn, ContactRelease

SessionDep = Callable[[], AsyncIterator[AsyncSession]]
# 256 random bits in URL-safe base64 are 43 characters; anything much longer is not a token of ours.
Token = Annotated[str, Path(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]

THANKS = {
    "safe": page.TEXTS["zh"]["thanks_safe"],
    "defrauded": page.TEXTS["zh"]["thanks_defrauded"],
}
REFUSED = {"not_found": "invalid", "token_used": "used", "token_expired": "expired"}
Language = Annotated[str | None, Query(alias="l", max_length=4, description="zh, ug or kk")]


def router(
    session_dep: SessionDep,
    institution_dep: Callable[..., Coroutine[Any, Any, Caller]],
    bridge: service.CaseBridge,
) -> APIRouter:
    api = APIRouter(tags=["citizens"])
    Session = Annotated[AsyncSession, Depends(session_dep, scope="function")]
    # The link is public: guessing tokens or flooding one is limited per address and per token.
    limits = RateLimitSettings()
    per_address, per_token = per_minute(limits.citizen_per_min), per_minute(limits.citizen_per_min)
    Institution = Annotated[Caller, Depends(institution_dep)]

    def limit_answers(request: Request, token: str) -> None:
        per_address.take(client_address(request), "answers from this address")
        per_token.take(token, "answers to this link")

    @api.get("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def question(token: Token, lang: Language = None) -> HTMLResponse:
        # Nothing is looked up: opening the link (or a preview of it) uses nothing and reveals nothing.
        return HTMLResponse(page.render(token=token, language=page.language_of(lang)))

    @api.post("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def answer_page(
        token: Token,
        session: Session,
        answer: Annotated[Literal["safe", "defrauded"], Form()],
        request: Request,
        lang: Language = None,
    ) -> HTMLResponse:
        """The page's own answer, a plain form post: the same one-time rules (and limits) as the API."""
        limit_answers(request, token)
        language = page.language_of(lang)
        try:
            await service.answer(session, token=token, answer=answer, bridge=bridge, now=datetime.now(UTC))
        except (NotFound, Conflict) as exc:
            outcome = REFUSED.get(exc.code, "invalid")
            status = 404 if isinstance(exc, NotFound) else 409
            return HTMLResponse(page.render(token=token, language=language, outcome=outcome), status)
        return HTMLResponse(page.render(token=token, language=language, outcome=f"thanks_{answer}"))

    @api.post("/v1/answers/{token}", response_model=AnswerOut, summary="The citizen's one-time answer")
    async def answer(token: Token, body: AnswerIn, session: Session, request: Request) -> AnswerOut:
        limit_answers(request, token)
        await service.answer(session, token=token, answer=body.answer, bridge=bridge, now=datetime.now(UTC))
        return AnswerOut(recorded=True, message=THANKS[body.answer])

    @api.put("/v1/contacts", status_code=204, summary="A telecom sets a subscriber's language and push id")
    async def contact(body: ContactIn, session: Session, caller: Institution) -> None:
        if caller.kind != "telecom":
            raise Forbidden("only telecom operators report subscribers' contact preferences")
        await service.set_contact(
            session,
            phone=body.phone,
            language=body.language,
            push_id=body.push_id,
            by=caller.institution_id,
            now=datetime.now(UTC),
        )

    @api.post("/v1/contacts/release", status_code=204, summary="Port-out: give a subscriber's number up")
    async def release(body: ContactRelease, session: Session, caller: Institution) -> None:
        if caller.kind != "telecom":
            raise Forbidden("only telecom operators report subscribers' contact preferences")
        await service.release_contact(session, phone=body.phone, by=caller.institution_id)

    return api
