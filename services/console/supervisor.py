"""The supervisor's view: approvals waiting (four eyes), overdue institutions, stop-payments about to
lapse; approve or decline in one click, with the reason recorded."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.console import web
from services.console.session import User

LAPSE_WITHIN = timedelta(hours=12)


async def live_data(request: Request, user: User) -> dict[str, Any]:
    api = web.console(request).coordination(user)
    soon = (datetime.now(UTC) + LAPSE_WITHIN).isoformat()
    waiting, overdue, lapsing = await asyncio.gather(
        api.get("/v1/instructions", status="awaiting_approval", limit=200),
        api.get("/v1/instructions", overdue="true", limit=500),
        api.get("/v1/instructions", kind="stop_payment", holding="true", expires_before=soon, limit=200),
    )
    late = Counter(i["institution_id"] for i in overdue)
    return {
        "waiting": waiting,
        "overdue": overdue,
        "late_institutions": late.most_common(),
        "lapsing": sorted(lapsing, key=lambda i: i["expires_at"] or ""),
    }


async def live_pieces(request: Request, user: User) -> dict[str, str]:
    data = await live_data(request, user)
    return {"supervision": web.fragment(request, "_supervisor.html", user=user, **data)}


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/supervisor")
    async def page(request: Request, user: Annotated[User, Depends(web.officer)]) -> Response:
        data = await live_data(request, user)
        return web.render(request, "supervisor.html", user=user, **data)

    return api
