"""Routes of /v1/officer/sessions: the console opens an officer's session at sign-in, asks on every
request whether it is still live, and ends it at sign-out; each with the officer's own token."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.deps import Deps
from services.coordination.officers import sessions
from services.kit.auth import Officer
from streams.schemas.events import Instant

SessionId = Annotated[str, Path(pattern="^[0-9a-f]{32}$")]


class Opening(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_at: Instant = Field(description="the session's end (the console's; within a day)")


class OfficerSessionRead(BaseModel):
    id: str = Field(description="the session's id: of use only with the officer's own token")
    expires_at: datetime


def router(deps: Deps) -> APIRouter:
    api = APIRouter(prefix="/v1/officer/sessions", tags=["officer sessions"])
    Session = Annotated[AsyncSession, Depends(deps.session)]
    Who = Annotated[Officer, Depends(deps.officer)]

    @api.post("", response_model=OfficerSessionRead, status_code=201, summary="The console opens a session")
    async def open_session(body: Opening, session: Session, who: Who) -> OfficerSessionRead:
        found = await sessions.open_session(session, officer=who, expires_at=body.expires_at)
        return OfficerSessionRead(id=found, expires_at=body.expires_at)

    @api.get(
        "/{session_id}", response_model=OfficerSessionRead, summary="Whether a session is live (401: ended)"
    )
    async def check(session_id: SessionId, session: Session, who: Who) -> OfficerSessionRead:
        ends = await sessions.check(session, officer=who, session_id=session_id)
        return OfficerSessionRead(id=session_id, expires_at=ends)

    @api.delete("/{session_id}", status_code=204, summary="Sign out: the session ends at once")
    async def end(session_id: SessionId, session: Session, who: Who) -> None:
        await sessions.end(session, officer=who, session_id=session_id)

    return api
