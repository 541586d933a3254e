"""Routes of /v1/institution/sessions: an institution's user signs in with a password and gets a
session token that the institution routes take as they take the institution's API key."""

import math
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.institutions import users
from services.kit.db import unit_of_work
from services.kit.errors import NotAuthenticated, TooManyRequests
from services.kit.ratelimit import RateLimitSettings, client_address, per_minute
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


def router(
    sessions: async_sessionmaker[AsyncSession], session_dep: Callable[..., Any], *, ttl_s: float
) -> APIRouter:
    """`sessions` for the sign-in, which holds no connection while it checks a password; `session_dep`
    (the request's unit of work) for the sign-out."""
    api = APIRouter(prefix="/v1/institution/sessions", tags=["institution"])
    Session = Annotated[AsyncSession, Depends(session_dep)]
    limits = RateLimitSettings()
    guard = SignInGuard(limits)
    checks = users.PasswordChecks(limits.password_checks)

    @api.post("", response_model=Granted, status_code=201, summary="An institution user signs in")
    async def sign_in(body: SignIn, request: Request) -> Granted:
        attempt = guard.before(request, f"{body.institution_id}/{body.username}")
        with checks.admitted(client_address(request)):
            async with sessions() as session:  # a read: the connection goes back before the hash
                found = await users.account(
                    session, institution_id=body.institution_id, username=body.username
                )
            checked = await users.checked(body.password, found)
        if checked is None:
            guard.failed(attempt)
            raise NotAuthenticated(users.WRONG)
        async with unit_of_work(sessions) as session:
            token, ends = await users.open_session(session, checked=checked, ttl_s=ttl_s)
        return Granted(token=token, expires_at=ends)

    @api.delete("/current", status_code=204, summary="Sign out: the session token stops working at once")
    async def sign_out(
        session: Session, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        if creds is None or not creds.credentials.startswith(users.PREFIX):
            raise NotAuthenticated(f"send the session token: `Authorization: Bearer {users.PREFIX}...`")
        await users.sign_out(session, raw=creds.credentials)

    return api


class SignInGuard:
    """Wrong passwords are limited per account and client address (a guesser elsewhere cannot lock a user
    out there), and per account from anywhere at `GLOBAL` times that (guessing from many addresses stays
    bounded; locking a user out everywhere takes that many failures a minute). Not per address across
    accounts: people sign in through the console, whose address stands for all of them unless
    coordination believes its X-Forwarded-For, and one guesser would lock everyone out; the password
    checks at once are bounded instead, per address too (`users.PasswordChecks`)."""

    GLOBAL = 10

    def __init__(self, settings: RateLimitSettings) -> None:
        self.here = per_minute(settings.auth_failures_per_min)
        self.anywhere = per_minute(self.GLOBAL * settings.auth_failures_per_min)

    def before(self, request: Request, account: str) -> tuple[str, str]:
        keys = (f"{account} {client_address(request)}", account)
        for limiter, key in zip((self.here, self.anywhere), keys, strict=True):
            wait = limiter.wait(key)
            if wait is not None:
                raise TooManyRequests("too many wrong passwords for this user", retry_after_s=math.ceil(wait))
        return keys

    def failed(self, keys: tuple[str, str]) -> None:
        self.here.retry_after(keys[0])
        self.anywhere.retry_after(keys[1])
