"""Routes officers read warnings through: those of a case's alerts (the case page shows the citizen's
warning and answer), and the figures of a period (the dashboard). No phone numbers are returned."""

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Officer, require_role
from services.kit.errors import InvalidInput
from services.notifier.warnings import repository
from streams.schemas.events import Instant

SessionDep = Callable[[], AsyncIterator[AsyncSession]]


class WarningRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    language: str
    typology: str
    status: str
    created_at: datetime
    first_delivered_at: datetime | None
    answer: str | None
    answered_at: datetime | None
    desk_defrauded_at: datetime | None  # when the phone desk first heard from the person: being defrauded
    outcome: str | None
    case_id: uuid.UUID | None


class WarningPage(BaseModel):
    items: list[WarningRead]


class WarningSummary(BaseModel):
    since: datetime
    until: datetime
    warned: int
    delivered: int
    answered: int
    safe: int
    defrauded: int
    dissuaded: int
    reached_too_late: int
    not_reached: int


def router(session_dep: SessionDep, officer_dep: Callable[..., Coroutine[Any, Any, Officer]]) -> APIRouter:
    api = APIRouter(prefix="/v1/warnings", tags=["warnings"])
    Session = Annotated[AsyncSession, Depends(session_dep, scope="function")]
    Who = Annotated[Officer, Depends(officer_dep)]

    @api.get("", response_model=WarningPage, summary="The warnings of these alerts, and the answers")
    async def for_alerts(
        session: Session, who: Who, alert_id: Annotated[list[uuid.UUID], Query(min_length=1, max_length=100)]
    ) -> WarningPage:
        require_role(who, "operator", "supervisor", "auditor")
        rows = await repository.for_alerts(session, alert_id)
        return WarningPage(items=[WarningRead.model_validate(r) for r in rows])

    @api.get("/summary", response_model=WarningSummary, summary="Warnings of a period: delivered, answered")
    async def summary(
        session: Session,
        who: Who,
        since: Annotated[Instant, Query(description="warnings created at or after")],
        until: Annotated[Instant | None, Query(description="default: now")] = None,
    ) -> WarningSummary:
        require_role(who, "operator", "supervisor", "auditor")
        end = until or datetime.now(UTC)
        if end <= since:
            raise InvalidInput(
                "the period is from `since` to `until`",
                details=[{"field": "query.since", "reason": "not before until"}],
            )
        return WarningSummary(
            since=since, until=end, **await repository.summary(session, since=since, until=end)
        )

    return api
