"""Sign-in and sign-out. Officers sign in with the coordination service's operator identity (in
development the local token issuer); institution staff with their own user of their institution,
whose password the coordination API checks. Sign-out ends the session (and the institution session
at the API)."""

import time
from datetime import datetime
from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.console import web
from services.console.api import ApiError
from services.console.session import COOKIE, User
from services.kit.auth import ROLES, AuthSettings
from services.kit.settings import Environment
from services.kit.tokens import issue

Name = Annotated[str, Form(min_length=1, max_length=120, pattern=r"^[\w.@-]+$")]


def home_of(user: User) -> str:
    if not user.officer:
        return "/portal"
    return {"auditor": "/audit", "supervisor": "/supervisor"}.get(user.role, "/")


def _next(target: str | None, user: User) -> str:
    # Only a path of this console: never an absolute URL (an open redirect).
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return home_of(user)


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/signin")
    async def page(request: Request, next: str | None = None) -> Response:
        c = web.console(request)
        return web.render(
            request, "signin.html", user=None, next=next or "", dev=c.dev_tokens, roles=ROLES, error=None
        )

    @api.post("/signin/officer")
    async def sign_in_officer(
        request: Request,
        subject: Name,
        unit: Name,
        role: Annotated[str, Form(pattern="^(operator|supervisor|auditor)$")],
        next: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        c = web.console(request)
        if not c.dev_tokens:
            return web.render(
                request,
                "signin.html",
                user=None,
                status=403,
                next=next,
                dev=False,
                roles=ROLES,
                error="dev_sign_in_off",
            )
        token = issue(subject=subject, role=role, unit=unit, ttl_s=int(c.settings.session_ttl_s))
        user = c.sessions.start(
            kind="officer",
            subject=subject,
            role=role,
            unit=unit,
            token=token,
            credential_ends_at=_token_end(token),
        )
        return _started(request, user, next)

    @api.post("/signin/institution")
    async def sign_in_institution(
        request: Request,
        institution: Name,
        username: Name,
        password: Annotated[str, Form(min_length=1, max_length=200)],
        next: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        c = web.console(request)
        body = {"institution_id": institution, "username": username, "password": password}
        try:
            granted = await c.coordination(None).post("/v1/institution/sessions", body)
        except ApiError as exc:
            error = "wrong_password" if exc.status in (401, 422) else "unavailable"
            status = 401 if exc.status in (401, 422) else exc.status
            return web.render(
                request,
                "signin.html",
                user=None,
                status=status,
                next=next,
                dev=c.dev_tokens,
                roles=ROLES,
                error=error,
                institution=institution,
            )
        ends = datetime.fromisoformat(granted["expires_at"]).timestamp()
        user = c.sessions.start(
            kind="institution",
            subject=username,
            role="institution",
            unit=institution,
            token=granted["token"],
            credential_ends_at=ends,
        )
        return _started(request, user, next)

    @api.post("/signout")
    async def sign_out(
        request: Request,
        user: Annotated[User, Depends(web.signed_in)],
        csrf: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        web.check_csrf(user, csrf)
        c = web.console(request)
        if not user.officer:
            try:
                await c.coordination(user).call("DELETE", "/v1/institution/sessions/current")
            except ApiError:
                pass  # already ended at the API: the console's session ends all the same
        response = RedirectResponse("/signin?out=1", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @api.get("/lang/{code}")
    async def choose_language(request: Request, code: str) -> Response:
        response = RedirectResponse(web.back(request, "/"), 303)
        if code in ("zh", "en"):
            response.set_cookie(web.LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
        return response

    return api


def _token_end(token: str) -> float:
    claims = jwt.decode(token, options={"verify_signature": False})
    return float(claims.get("exp", time.time()))


def _started(request: Request, user: User, next: str) -> Response:
    response = RedirectResponse(_next(next, user), 303)
    web.set_session(response, web.console(request), user)
    return response


def dev_tokens_usable(environment: Environment, auth: AuthSettings) -> bool:
    """The local issuer signs tokens the APIs accept only where they verify the development secret."""
    return environment != Environment.PRODUCTION and not auth.public_key
