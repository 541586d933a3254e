"""Routes of the citizen's answer link, and of telecoms telling us subscribers' language and app."""

from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.institutions.credentials import Caller
from services.kit.errors import Forbidden
from services.notifier.warnings import service
from services.notifier.warnings.schemas import AnswerIn, AnswerOut, ContactIn

SessionDep = Callable[[], AsyncIterator[AsyncSession]]

THANKS = {
    "safe": "谢谢。请继续保持警惕：公安机关不会要求您转账。",
    "defrauded": "谢谢。反诈中心民警将立即与您联系并设法止付。请勿再转账。",
}

# The page behind the link in the SMS: it shows two buttons and sends the answer; the token is
# checked only when the answer is posted, so merely opening the link (a preview bot) uses nothing.
PAGE = """<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>反诈预警</title><h1>反诈预警</h1><p>您是否安全？</p>
<button onclick="go('safe')">我很安全</button> <button onclick="go('defrauded')">我正在被骗</button>
<p id="r"></p><script>
async function go(a){const r=await fetch(location.pathname.replace('/a/','/v1/answers/'),
{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify({answer:a})});
document.getElementById('r').textContent=(await r.json()).message||(await r.text());}
</script>"""


def router(
    session_dep: SessionDep,
    institution_dep: Callable[..., Coroutine[Any, Any, Caller]],
    bridge: service.CaseBridge,
) -> APIRouter:
    api = APIRouter(tags=["citizens"])
    Session = Annotated[AsyncSession, Depends(session_dep, scope="function")]
    Institution = Annotated[Caller, Depends(institution_dep)]

    @api.get("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def page(token: str) -> str:
        return PAGE

    @api.post("/v1/answers/{token}", response_model=AnswerOut, summary="The citizen's one-time answer")
    async def answer(token: str, body: AnswerIn, session: Session) -> AnswerOut:
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

    return api
