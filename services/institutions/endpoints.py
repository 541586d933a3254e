"""Routes of /v1/institution/sessions: an institution's user signs in with a password and gets a
session token that the institution routes take as they take the institution's API key."""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.institutions import users
from services.kit.errors import NotAuthenticated
from streams.schemas.events import InstitutionId

_bearer = HTTPBearer(auto_error=False)


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    institution_id: InstitutionId
    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=200)


class Granted(BaseModel):
    token: str = Field(description="send as `Authorization: Bearer <token>` to the institution routes")
    expires_at: datetime


def router(session_dep: Callable[..., Any], *, ttl_s: float) -> APIRouter:
    api = APIRouter(prefix="/v1/institution/sessions", tags=["institution"])
    Session = Annotated[AsyncSession, Depends(session_dep)]

    @api.post("", response_model=Granted, status_code=201, summary="An institution user signs in")
    async def sign_in(body: SignIn, session: Session) -> Granted:
        token, ends = await users.sign_in(
            session,
            institution_id=body.institution_id,
            username=body.username,
            password=body.password,
            ttl_s=ttl_s,
        )
        return Granted(token=token, expires_at=ends)

    @api.delete("/current", status_code=204, summary="Sign out: the session token stops working at once")
    async def sign_out(
        session: Session, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        if creds is None or not creds.credentials.startswith(users.PREFIX):
            raise NotAuthenticated(f"send the session token: `Authorization: Bearer {users.PREFIX}...`")
        await users.sign_out(session, raw=creds.credentials)

    return api
