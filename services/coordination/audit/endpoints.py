"""Routes of /v1/audit: auditors read the log and check its chain."""

import uuid
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.audit.schemas import AuditPage, AuditRead, VerdictRead
from services.coordination.deps import Deps
from services.kit.audit import repository, service
from services.kit.auth import Officer, require_role
from streams.schemas.events import Instant


def router(deps: Deps) -> APIRouter:
    api = APIRouter(prefix="/v1/audit", tags=["audit"])
    Session = Annotated[AsyncSession, Depends(deps.session)]
    Who = Annotated[Officer, Depends(deps.officer)]

    @api.get("", response_model=AuditPage, summary="The audit log in chain order (auditors)")
    async def read(
        session: Session,
        who: Who,
        case_id: uuid.UUID | None = None,
        entity_id: str | None = None,
        actor: str | None = None,
        since: Instant | None = None,
        after_id: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> AuditPage:
        require_role(who, "auditor")
        rows = await repository.page(
            session,
            case_id=case_id,
            entity_id=entity_id,
            actor=actor,
            since=since,
            after_id=after_id,
            limit=limit,
        )
        return AuditPage(
            items=[AuditRead.model_validate(r) for r in rows],
            next_after_id=rows[-1].id if len(rows) == limit else None,
        )

    @api.get(
        "/verify",
        response_model=VerdictRead,
        summary="Check the hash chain (the rows since the last verification); names the first bad row",
    )
    async def verify(session: Session, who: Who) -> VerdictRead:
        require_role(who, "auditor")
        now = await service.current(session)
        return VerdictRead(**asdict(now.verdict), whole_verified_at=now.whole_at)

    return api
