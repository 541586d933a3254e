"""Routes of /v1/alerts."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts import repository, service
from services.coordination.alerts.schemas import AlertDetail, AlertPage, AlertRead, Status, StatusChange
from services.coordination.deps import Deps
from services.kit import pages
from services.kit.auth import Officer, require_role
from services.kit.errors import NotFound
from streams.schemas.events import Instant


def router(deps: Deps) -> APIRouter:
    api = APIRouter(prefix="/v1/alerts", tags=["alerts"])
    Session = Annotated[AsyncSession, Depends(deps.session)]
    Who = Annotated[Officer, Depends(deps.officer)]

    @api.get("", response_model=AlertPage, summary="List alerts, newest first")
    async def list_alerts(
        session: Session,
        who: Who,
        status: Status | None = None,
        typology: str | None = None,
        min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
        max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
        since: Annotated[Instant | None, Query(description="received at or after (ISO 8601)")] = None,
        until: Annotated[Instant | None, Query(description="received before (ISO 8601)")] = None,
        incident_id: Annotated[
            uuid.UUID | None, Query(description="only the alerts of this incident (one collection account)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> AlertPage:
        require_role(who, "operator", "supervisor", "auditor")
        where = repository.AlertFilter(status, typology, min_score, max_score, since, until, incident_id)
        after = pages.after(cursor) if cursor else None
        rows = await repository.list_page(session, where=where, limit=limit + 1, after=after)
        page = rows[:limit]
        next_cursor = pages.cursor_of(page[-1].received_at, page[-1].id) if len(rows) > limit else None
        return AlertPage(items=[AlertRead.model_validate(r) for r in page], next_cursor=next_cursor)

    @api.get("/{alert_id}", response_model=AlertDetail, summary="One alert with its status history")
    async def get_alert(alert_id: uuid.UUID, session: Session, who: Who) -> AlertDetail:
        require_role(who, "operator", "supervisor", "auditor")
        row = await repository.get(session, alert_id)
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        history = await repository.history(session, alert_id)
        return AlertDetail.model_validate({**AlertRead.model_validate(row).model_dump(), "history": history})

    @api.post(
        "/{alert_id}/status", response_model=AlertRead, summary="Triage: new → triaged → dismissed/escalated"
    )
    async def change_status(alert_id: uuid.UUID, body: StatusChange, session: Session, who: Who) -> AlertRead:
        require_role(who, "operator", "supervisor")
        row = await service.change_status(
            session, alert_id=alert_id, to=body.status, officer=who, note=body.note
        )
        return AlertRead.model_validate(row)

    return api
