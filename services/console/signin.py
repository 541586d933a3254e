"""Sign-in and sign-out. Officers sign in with the coordination service's operator identity (in
development the local token issuer); institution staff with their own user of their institution,
whose password the coordination API checks. Either's session is kept at the coordination API too (an
officer's opened there at sign-in; an institution user's is their session token), so a sign-out ends it
there at once: a copy of the cookie is refused by every console instance after it, within `ends.CHECK_S`
(docs/console.md)."""

import hmac
import logging
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.console import ends, oidc, web
from services.console.api import ApiError
from services.console.session import COOKIE, User
from services.kit.auth import ROLES, AuthSettings
from services.kit.ratelimit import client_address
from services.kit.settings import Environment
from services.kit.tokens import issue

log = logging.getLogger(__name__)
OIDC_COOKIE = "stopline_oidc"
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


def refused_sign_in(status: int) -> tuple[str, int]:
    """What the sign-in page says (`signin_<error>`), and answers, of coordination's refusal of a bank
    user's sign-in: too many wrong passwords is said as such (one locked out for a minute was told that the
    service is down)."""
    if status in (401, 422):
        return "wrong_password", 401
    return ("too_many" if status == 429 else "unavailable"), status


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/signin")
    async def page(request: Request, next: str | None = None) -> Response:
        return _page(request, next=next or "")

    @api.get("/signin/oidc")
    async def start_oidc(request: Request, next: Annotated[str, Query(max_length=2000)] = "") -> Response:
        """Send the officer to the identity provider, remembering (sealed) what to check on return."""
        c = web.console(request)
        if c.oidc is None:
            return _page(request, next=next, status=404, error="oidc_off")
        attempt = oidc.Attempt.new(next)
        try:
            target = await c.oidc.authorize_url(attempt, _redirect_uri(c))
        except oidc.SignInFailed:
            return _page(request, next=next, status=503, error="unavailable")
        response = RedirectResponse(target, 303)
        web.set_sealed(request, response, OIDC_COOKIE, asdict(attempt), max_age=600, path="/signin/oidc")
        return response

    @api.get("/signin/oidc/callback")
    async def finish_oidc(
        request: Request,
        code: Annotated[str, Query(min_length=1, max_length=4000)] = "",
        state: Annotated[str, Query(max_length=200)] = "",
    ) -> Response:
        c = web.console(request)
        attempt = _attempt(request)
        if c.oidc is None or attempt is None or not code or not hmac.compare_digest(state, attempt.state):
            return _page(request, next="", status=401, error="oidc_failed")
        try:
            who = await c.oidc.finish(code=code, attempt=attempt, redirect_uri=_redirect_uri(c))
        except oidc.SignInFailed:
            return _page(request, next=attempt.next, status=401, error="oidc_failed")
        user = c.sessions.start(
            kind="officer",
            subject=who.subject,
            role=who.role,
            unit=who.unit,
            token=who.access_token,
            credential_ends_at=who.ends_at,
        )
        response = await _officer_started(request, user, attempt.next)
        response.delete_cookie(OIDC_COOKIE, path="/signin/oidc")
        return response

    @api.post("/signin/officer")
    async def sign_in_officer(
        request: Request,
        subject: Name,
        unit: Name,
        role: Annotated[str, Form(pattern="^(operator|supervisor|auditor)$")],
        next: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        c = web.console(request)
        if not web.same_origin(request):  # login CSRF: another site signing the browser in as someone
            return _page(request, next=next, status=403, error="cross_site")
        if not c.dev_tokens:
            return _page(request, next=next, status=403, error="dev_sign_in_off")
        token = issue(subject=subject, role=role, unit=unit, ttl_s=int(c.settings.session_ttl_s))
        user = c.sessions.start(
            kind="officer",
            subject=subject,
            role=role,
            unit=unit,
            token=token,
            credential_ends_at=_token_end(token),
        )
        return await _officer_started(request, user, next)

    @api.post("/signin/institution")
    async def sign_in_institution(
        request: Request,
        institution: Name,
        username: Name,
        password: Annotated[str, Form(min_length=1, max_length=200)],
        next: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        c = web.console(request)
        if not web.same_origin(request):
            return _page(request, next=next, status=403, error="cross_site", institution=institution)
        body = {"institution_id": institution, "username": username, "password": password}
        try:
            coordination = c.coordination(None)
            # Wrong passwords are limited per person's address (where coordination believes the console)
            coordination.headers["X-Forwarded-For"] = client_address(request)
            granted = await coordination.post("/v1/institution/sessions", body)
        except ApiError as exc:
            error, status = refused_sign_in(exc.status)
            return _page(request, next=next, status=status, error=error, institution=institution)
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
        user: Annotated[User, Depends(web.sealed_user)],
        csrf: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        web.check_csrf(user, csrf)
        c = web.console(request)
        # Ended at the API, where every console instance asks: a copy of the cookie is of no use after it.
        # The browser's cookie goes whatever the API says: one the API did not take (it did not answer) is
        # tried again (`ends.SignOuts`), and the person is told that it is not done yet.
        c.checks.forget(user.session_id)  # (refused here at once; elsewhere within `ends.CHECK_S`)
        try:
            await ends.end(c.coordination(user), user)
            told = "/signin?out=1"
        except ApiError:
            c.signouts.add(user)
            told = "/signin?out=pending"
        response = RedirectResponse(told, 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @api.get("/lang/{code}")
    async def choose_language(request: Request, code: str) -> Response:
        response = RedirectResponse(web.back(request, "/"), 303)
        if code in ("zh", "en"):
            response.set_cookie(web.LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
        return response

    return api


def _page(
    request: Request, *, next: str, status: int = 200, error: str | None = None, **more: Any
) -> Response:
    c = web.console(request)
    return web.render(
        request,
        "signin.html",
        user=None,
        status=status,
        next=next,
        dev=c.dev_tokens,
        oidc=c.oidc is not None,
        roles=ROLES,
        error=error,
        **more,
    )


def _redirect_uri(c: web.Console) -> str:
    return c.settings.public_url.rstrip("/") + "/signin/oidc/callback"


def _attempt(request: Request) -> oidc.Attempt | None:
    found = web.open_sealed(request, OIDC_COOKIE)
    try:
        return oidc.Attempt(**found) if isinstance(found, dict) else None
    except TypeError:
        return None


def _token_end(token: str) -> float:
    claims = jwt.decode(token, options={"verify_signature": False})
    return float(claims.get("exp", time.time()))


async def _officer_started(request: Request, user: User, next: str) -> Response:
    """An officer's session opened at the coordination API (where a sign-out or an administrator ends it
    for every console instance), then in the browser."""
    end = datetime.fromtimestamp(user.ends_at, UTC).isoformat()
    try:
        opened = (
            await web.console(request).coordination(user).post("/v1/officer/sessions", {"expires_at": end})
        )
    except ApiError as exc:
        if exc.status == 404:  # a coordination from before officers' sessions: deployed in the wrong order
            log.error(
                "the coordination API has no officer sessions (404 on POST /v1/officer/sessions): deploy "
                "coordination of this version before the console (docs/operations.md#upgrade-order)"
            )
        return _page(request, next=next, status=503 if exc.status == 404 else exc.status, error="unavailable")
    user = replace(user, session_id=str(opened["id"]))
    web.console(request).checks.opened(user.session_id)  # (just opened: its first page need not ask)
    return _started(request, user, next)


def _started(request: Request, user: User, next: str) -> Response:
    response = RedirectResponse(_next(next, user), 303)
    web.set_session(response, web.console(request), user)
    return response


def dev_tokens_usable(environment: Environment, auth: AuthSettings) -> bool:
    """The local issuer signs tokens the APIs accept only where they verify the development secret."""
    return environment != Environment.PRODUCTION and not auth.public_key
