"""Route of /v1/dashboard: the figures of a period (by default since midnight, Beijing time)."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.dashboard import service
from services.coordination.dashboard.schemas import Dashboard
from services.coordination.deps import Deps
from services.kit.auth import Officer, require_role
from services.kit.errors import InvalidInput
from streams.schemas.events import Instant

LOCAL = timezone(timedelta(hours=8))


def midnight() -> datetime:
    return datetime.now(LOCAL).replace(hour=0, minute=0, second=0, microsecond=0)


def router(deps: Deps) -> APIRouter:
    api = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])
    Session = Annotated[AsyncSession, Depends(deps.session)]
    Who = Annotated[Officer, Depends(deps.officer)]

    @api.get(
        "", response_model=Dashboard, summary="The figures of a period: the caller's unit (auditors: all)"
    )
    async def dashboard(
        session: Session,
        who: Who,
        since: Annotated[Instant | None, Query(description="default: today's midnight, Beijing time")] = None,
        until: Annotated[Instant | None, Query(description="default: now")] = None,
    ) -> Dashboard:
        require_role(who, "operator", "supervisor", "auditor")
        start, end = since or midnight(), until or datetime.now(UTC)
        if end <= start or end - start > timedelta(days=366):
            raise InvalidInput(
                "the period is from `since` to `until`, at most a year",
                details=[{"field": "query.until", "reason": "not after since, or over a year later"}],
            )
        unit = None if who.role == "auditor" else who.unit
        return await service.figures(session, unit=unit, since=start, until=end)

    return api
