"""Routes of /v1/institution/sessions: an institution's user signs in with a password and gets a
session token that the institution routes take as they take the institution's API key."""

import math
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.institutions import users
from services.kit.errors import NotAuthenticated, TooManyRequests
from services.kit.ratelimit import RateLimitSettings, per_minute
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
    # Wrong passwords are limited per account: people sign in through the console, so one client address
    # stands for all of them and a limit per address would lock everyone out with one guesser.
    failures = per_minute(RateLimitSettings().auth_failures_per_min)

    @api.post("", response_model=Granted, status_code=201, summary="An institution user signs in")
    async def sign_in(body: SignIn, session: Session) -> Granted:
        account = f"{body.institution_id}/{body.username}"
        wait = failures.wait(account)
        if wait is not None:
            raise TooManyRequests("too many wrong passwords for this user", retry_after_s=math.ceil(wait))
        try:
            token, ends = await users.sign_in(
                session,
                institution_id=body.institution_id,
                username=body.username,
                password=body.password,
                ttl_s=ttl_s,
            )
        except NotAuthenticated:
            failures.retry_after(account)
            raise
        return Granted(token=token, expires_at=ends)

    @api.delete("/current", status_code=204, summary="Sign out: the session token stops working at once")
    async def sign_out(
        session: Session, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        if creds is None or not creds.credentials.startswith(users.PREFIX):
            raise NotAuthenticated(f"send the session token: `Authorization: Bearer {users.PREFIX}...`")
        await users.sign_out(session, raw=creds.credentials)

    return api
