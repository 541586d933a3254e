"""The auditor's view: the audit chain, searchable by case, entity, actor and time, with the verifier's
result over the whole chain."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.console import web
from services.console.api import ApiError
from services.console.session import User

UUID = "^[0-9a-f-]{36}$"


async def auditor(user: Annotated[User, Depends(web.officer)]) -> User:
    """The API's own rule, asked before the page's fields are read: an officer who may not read the log is
    told so, whatever they typed in the address (not that `days` is no number)."""
    if not user.may("auditor"):
        raise ApiError(403, "forbidden", f"role {user.role} may not do this; needs auditor")
    return user


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/audit")
    async def audit(
        request: Request,
        user: Annotated[User, Depends(auditor)],
        case_id: Annotated[str | None, Query(pattern=UUID)] = None,
        entity_id: Annotated[str | None, Query(max_length=120)] = None,
        actor: Annotated[str | None, Query(max_length=120)] = None,
        days: Annotated[int, Query(ge=1, le=3650)] = 7,
        after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    ) -> Response:
        api_ = web.console(request).coordination(user)
        since = (datetime.now(UTC) - timedelta(days=days)).isoformat()
        params: dict[str, Any] = {
            "case_id": case_id,
            "entity_id": entity_id or None,
            "actor": actor or None,
            "since": since,
            "after_id": after_id,
            "limit": 200,
        }
        page, verdict = await asyncio.gather(api_.get("/v1/audit", **params), api_.get("/v1/audit/verify"))
        search = {"case_id": case_id or "", "entity_id": entity_id or "", "actor": actor or "", "days": days}
        return web.render(request, "audit.html", user=user, page=page, verdict=verdict, search=search)

    return api
