"""Routes of /v1/incidents: the alert queue as operators work it, one mule or one episode at a time."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.deps import Deps
from services.coordination.incidents import repository, service
from services.coordination.incidents.schemas import (
    IncidentPage,
    IncidentRead,
    IncidentStatusChange,
    IncidentStatusResult,
    QueueStatus,
)
from services.kit.auth import Officer, require_role
from streams.schemas.events import Instant

IncidentId = Annotated[str, Path(pattern="^[0-9a-f]{20}$", description="an incident's `id`")]


def router(deps: Deps) -> APIRouter:
    api = APIRouter(prefix="/v1/incidents", tags=["incidents"])
    Session = Annotated[AsyncSession, Depends(deps.session)]
    Who = Annotated[Officer, Depends(deps.officer)]

    @api.get("", response_model=IncidentPage, summary="Alerts grouped by mule account or scam episode")
    async def list_incidents(
        session: Session,
        who: Who,
        status: QueueStatus | None = None,
        typology: Annotated[str | None, Query(max_length=40)] = None,
        min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
        since: Annotated[Instant | None, Query(description="alerts received at or after")] = None,
        until: Annotated[Instant | None, Query(description="alerts received before")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> IncidentPage:
        require_role(who, "operator", "supervisor", "auditor")
        where = repository.of_queue(status, typology, min_score, since, until)
        return IncidentPage(items=await service.page(session, where=where, limit=limit, who=who))

    @api.get("/{incident_id}", response_model=IncidentRead, summary="One incident with its alerts")
    async def get_incident(incident_id: IncidentId, session: Session, who: Who) -> IncidentRead:
        require_role(who, "operator", "supervisor", "auditor")
        return await service.get(session, ident=incident_id, who=who)

    @api.post(
        "/{incident_id}/status",
        response_model=IncidentStatusResult,
        summary="Triage every open alert of the incident at once",
    )
    async def change_status(
        incident_id: IncidentId, body: IncidentStatusChange, session: Session, who: Who
    ) -> IncidentStatusResult:
        require_role(who, "operator", "supervisor")
        moved = await service.change_status(
            session, ident=incident_id, to=body.status, officer=who, note=body.note
        )
        return IncidentStatusResult(
            changed=moved, incident=await service.get(session, ident=incident_id, who=who)
        )

    return api
