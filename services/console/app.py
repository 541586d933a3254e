"""The console service: server-rendered pages, live pieces over server-sent events, static assets.
`python -m services.console` serves it on STOPLINE_CONSOLE_PORT (8008)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.console import audit, cases, dashboard, ends, live, oidc, portal, queue, signin, supervisor, web
from services.console.api import ApiError
from services.console.headers import SecurityHeaders, server_error
from services.console.session import COOKIE, Sessions
from services.console.settings import ConsoleSettings
from services.console.slots import Slots
from services.kit.auth import AuthSettings
from services.kit.errors import FAILED_VALIDATION, field_problems
from services.kit.http import create_app, error_body, http_error, serve
from services.kit.sealing import Sealer
from services.kit.settings import CommonSettings


def build(common: CommonSettings | None = None, settings: ConsoleSettings | None = None) -> FastAPI:
    common = common or CommonSettings()
    settings = settings or ConsoleSettings()
    common.check_production_secrets(kafka=False)  # it reaches Stopline through the APIs only
    settings.check_production(common.environment)
    http = httpx.AsyncClient(
        timeout=settings.api_timeout_s, limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
    )
    state = web.Console(
        settings=settings,
        sessions=Sessions(settings.session_key, ttl_s=settings.session_ttl_s, idle_s=settings.idle_ttl_s),
        http=http,
        templates=web.templates(),
        sealer=Sealer(settings.session_key),
        dev_tokens=settings.dev_sign_in and signin.dev_tokens_usable(common.environment, AuthSettings()),
        slots=Slots(per_session=settings.live_per_session, per_address=settings.live_per_address),
        checks=ends.Checks(),
        signouts=ends.SignOuts(http, settings),
        oidc=oidc.Provider(
            http,
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
        )
        if settings.oidc_issuer
        else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        retrying = asyncio.create_task(state.signouts.run(), name="sign-outs")
        try:
            yield
        finally:
            retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retrying
            await http.aclose()

    async def health() -> dict[str, Any]:
        return {"console": "ok"}

    app = create_app(
        title="Stopline console", health=health, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(Exception, server_error)
    app.state.console = state
    app.mount("/static", StaticFiles(directory=web.HERE / "static"), name="static")
    for module in (signin, queue, cases, supervisor, portal, audit, dashboard, live):
        app.include_router(module.router())

    @app.exception_handler(web.SignInRequired)
    async def _sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, web.SignInRequired)
        return web.sign_in_redirect(request, exc.why)

    @app.exception_handler(web.NotAllowed)
    async def _not_allowed(request: Request, _: Exception) -> Response:
        user = web.current_user(request)
        return web.render(request, "error.html", user=user, status=403, code="not_allowed", message=None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: Exception) -> Response:
        """What the pages never send (an address typed or pasted wrong, a field out of its bounds): a
        browser gets a page naming each field and why; the page's script the answer `web.done` gives it
        (`ok`, `message`), with the API's body of the same refusal."""
        assert isinstance(exc, RequestValidationError)
        details = field_problems(exc.errors())
        problems = "; ".join(f"{p['field']}: {p['reason']}" for p in details)
        if "application/json" in request.headers.get("accept", ""):
            body = error_body("invalid_input", FAILED_VALIDATION, details)
            return JSONResponse({"ok": False, "message": problems, **body}, 422)
        user = web.current_user(request)
        return web.render(
            request, "error.html", user=user, status=422, code="invalid_input", message=problems
        )

    @app.exception_handler(StarletteHTTPException)
    async def _no_such_page(request: Request, exc: Exception) -> Response:
        """No such page, or a method it does not take (an address typed wrong, a form posted to a page):
        a browser gets the console's page; the page's script and other clients, asking for JSON, the
        kit's error body. Either way with the same status and `Allow`."""
        answer = await http_error(request, exc)
        if answer.status_code not in (404, 405) or "application/json" in request.headers.get("accept", ""):
            return answer
        code = "not_found" if answer.status_code == 404 else "method_not_allowed"
        user = web.current_user(request)
        page = web.render(
            request, "error.html", user=user, status=answer.status_code, code=code, message=None
        )
        if "allow" in answer.headers:
            page.headers["Allow"] = answer.headers["allow"]
        return page

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if exc.status == 401:
            response: Response = web.sign_in_redirect(request)
            response.delete_cookie(COOKIE, path="/")
            return response
        user = web.current_user(request)
        return web.render(
            request, "error.html", user=user, status=exc.status, code=exc.code, message=exc.message
        )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return RedirectResponse("/static/favicon.svg", 301)

    return app


def main() -> None:
    serve(build, ConsoleSettings(), service="console")


if __name__ == "__main__":
    main()
