"""The FastAPI application every service starts from: error mapping, /metrics, /health, body limit."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy.exc
import sqlalchemy.orm
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit import errors, outages
from services.kit.inputs import refuse_unstorable
from services.kit.logging import log_fields

if TYPE_CHECKING:
    import uvicorn

    from services.kit.settings import CommonSettings

log = logging.getLogger(__name__)

STATUS = {
    errors.NotAuthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.TooManyRequests: 429,
    errors.InvalidInput: 422,
    errors.Unavailable: 503,
}

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
LivenessCheck = Callable[[], Mapping[str, str]]
STOPPED = "error: stopped"
# The last readiness answer, for alerts: set by every /health/ready (the orchestrator probes it every few
# seconds), so that /metrics never waits on a dependency. NaN until the first probe.
READY = Gauge("stopline_ready", "1: the last readiness check passed; 0: it did not")
READY.set(float("nan"))


def _status_of(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return body


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    return error_response(exc)


def error_response(exc: errors.DomainError) -> JSONResponse:
    """The answer to a domain error: its status, `{"error": ...}` body and headers."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, errors.NotAuthenticated) else None
    if isinstance(exc, errors.Unavailable | errors.TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(error_body(exc.code, exc.message, exc.details), _status_of(exc), headers=headers)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A driver error that says the database is unavailable answers 503; any other is a bug and stays one."""
    if outages.database_down(exc):
        return await _database_down(request, exc)
    raise exc


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL could not be reached: retryable, like any unavailable dependency (never a 500)."""
    log.warning("database unavailable", extra=log_fields(error=type(exc).__name__))
    return error_response(errors.Unavailable("the database is unavailable; retry later"))


NOT_JSON = "the body is read as JSON only when sent with `Content-Type: application/json`"


def not_json(request: Request) -> errors.UnsupportedMediaType:
    """The 415 of a body sent as another content type, or none (curl -d sends a form's)."""
    message = f"{NOT_JSON} (sent: {request.headers.get('content-type') or 'no Content-Type'})"
    return errors.UnsupportedMediaType(message, details=[_body(message)])


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    for problem in exc.errors():
        # FastAPI names the character a JSON body stopped parsing at as if it were a field (`body.15`).
        if problem["type"] == "json_invalid":
            reason = f"not JSON: {problem['ctx']['error']} at character {problem['loc'][-1]}"
            return JSONResponse(error_body("invalid_input", errors.UNPARSED, [_body(reason)]), 422)
        # A body left as bytes (another content type, or none: curl -d sends a form's) is not "not a dict".
        if tuple(problem["loc"]) == ("body",) and isinstance(problem.get("input"), bytes):
            return error_response(not_json(request))
    details = errors.field_problems(exc.errors())
    return JSONResponse(error_body("invalid_input", errors.FAILED_VALIDATION, details), 422)


def _body(reason: str) -> dict[str, str]:
    return {"field": "body", "reason": reason}


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own answers (no route, wrong method, a body that is not JSON) in the kit's error body."""
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, errors.PayloadTooLarge):  # FastAPI's body reading cut short by BodyLimit
        return error_response(exc.__cause__)
    if exc.status_code == 400:  # FastAPI could not parse the body (not UTF-8, not JSON)
        return JSONResponse(error_body("invalid_input", errors.UNPARSED, [_body(str(exc.detail))]), 422)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # One route per method: Starlette names only the first route matching the path; name them all, by
        # asking the routes (an included router's among them) which methods they take at this path.
        # A mounted app's own 405 (static files) names its methods already: kept.
        named = {m.strip() for m in headers.get("Allow", "").split(",") if m.strip()}
        headers["Allow"] = ", ".join(m for m in METHODS if m in named or _takes(request, m))
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers)


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _takes(request: Request, method: str) -> bool:
    """Whether a route of the app takes `method` at the request's path. The path as the app's router saw
    it (a mount moved it on), and no mount: its match does not look at the method."""
    scope = {**request.scope, "method": method, "root_path": request.scope.get("app_root_path", "")}
    routes = (r for r in request.app.router.routes if not isinstance(r, Mount))
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


PROBED = frozenset({"/health", "/health/ready", "/health/live", "/metrics"})


class ProbesTakeHead:
    """HEAD on the probes and /metrics answered as their GET without the body (RFC 9110), as load
    balancers and uptime checks send it; FastAPI's routes answer only the methods they declare (405)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or scope["path"] not in PROBED:
            await self.app(scope, receive, send)
            return

        async def bodiless(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, bodiless)


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413 before they are read into memory (`refused` called for
    each)."""

    def __init__(self, app: ASGIApp, max_bytes: int, refused: Callable[[], object] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            self._count()
            await self._too_large(send)
            return
        seen, counted = 0, False

        async def limited_receive() -> Message:
            nonlocal seen, counted
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # Counted here, once: the app's error handler usually answers it (a route or a dependency
                # was reading the body), and only what escapes the app is answered below.
                if not counted:
                    counted = True
                    self._count()
                raise errors.PayloadTooLarge(f"request body is over {self.max_bytes} bytes")
            return message

        try:
            await self.app(scope, limited_receive, send)
        except errors.PayloadTooLarge:
            await self._too_large(send)

    def _count(self) -> None:
        if self.refused is not None:
            self.refused()

    async def _too_large(self, send: Send) -> None:
        response = error_response(errors.PayloadTooLarge(f"request body is over {self.max_bytes} bytes"))
        await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


ERROR_ANSWERS = {
    401: "no credential, or one that is malformed, unknown, revoked or expired",
    403: "the credential may not do this",
    404: "no such resource (or none the caller may see)",
    409: "the resource's current state does not allow it; the message names the state",
    413: "request body too large",
    415: "a body sent without `Content-Type: application/json`",
    422: "invalid input: `details` names each field and reason",
    429: "too many requests: retry after `Retry-After` seconds",
    503: "a dependency (the database, Kafka) did not answer in time: retry",
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}


def _document_errors(app: FastAPI, components: dict[str, Any]) -> None:
    """Every operation's OpenAPI lists the error answers any route may give, in the kit's one error body
    (FastAPI's own 422 schema is not what the kit answers), said in the route's own words where its
    `responses` has them; `components` adds schemas a route names in its `openapi_extra` (a body it reads
    itself)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(components, Error=ERROR_SCHEMA)
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, operations in schema.get("paths", {}).items():
            if path == "/health" or path.startswith("/health/"):
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, said in ERROR_ANSWERS.items():
                    own = responses.get(str(status), {}).get("description")
                    answer: dict[str, Any] = {"description": own or said, "content": error}
                    if status in (429, 503):
                        answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
                    responses[str(status)] = answer
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    *,
    title: str,
    health: HealthCheck,
    liveness: LivenessCheck | None = None,
    max_body_bytes: int = 1_000_000,
    too_large: Callable[[], object] | None = None,
    components: dict[str, Any] | None = None,
    **kwargs: Any,
) -> FastAPI:
    """A FastAPI app with the kit's error mapping, its input rule, `/metrics`, health and a body-size
    limit. Health is two questions: `/health/ready` (also `/health`): may it take work now - its database
    and Kafka answer, its consumers hold their partitions (`health`); `/health/live`: is it worth keeping -
    no background task has ended and no consumer's handler is stuck (`liveness`, which must not wait on any
    dependency: an outage of one is not a reason to restart). `too_large` is called for each body refused
    for its size (before any route or credential is read)."""
    dependencies = [Depends(refuse_unstorable), *kwargs.pop("dependencies", [])]
    app = FastAPI(title=title, dependencies=dependencies, **kwargs)
    app.add_exception_handler(errors.DomainError, _domain_error)
    for down in outages.DATABASE_DOWN:
        app.add_exception_handler(down, _database_down)
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, refused=too_large)
    app.add_middleware(ProbesTakeHead)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    degraded: dict[int | str, dict[str, Any]] = {
        503: {"description": "a check failed", "content": {"application/json": {"schema": {}}}}
    }

    @app.get("/health", tags=["operations"], responses=degraded)
    @app.get("/health/ready", tags=["operations"], responses=degraded)
    async def readiness_endpoint() -> JSONResponse:
        report = _report(await health())
        READY.set(1 if report.status_code == 200 else 0)
        return report

    @app.get("/health/live", tags=["operations"], responses=degraded)
    async def liveness_endpoint() -> JSONResponse:
        return _report(dict(liveness()) if liveness is not None else {})

    _document_errors(app, components or {})
    return app


def _report(checks: dict[str, Any]) -> JSONResponse:
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, 200 if ok else 503)


def task_health(tasks: Mapping[str, asyncio.Task[Any]]) -> dict[str, str]:
    """A health check per background task: a consumer or worker that has ended is reported, not hidden."""
    return {name: STOPPED if task.done() else "ok" for name, task in tasks.items()}


def consumer_liveness(runners: Mapping[str, Any]) -> dict[str, str]:
    """A liveness check per consumer (a streams.consumer.ConsumerRunner): its handler is not stuck."""
    return {f"{name} handler": runner.liveness() for name, runner in runners.items()}


def group_health(runners: Mapping[str, Any]) -> dict[str, str]:
    """A readiness check per consumer (a streams.consumer.ConsumerRunner): it holds its partitions."""
    return {f"{name} partitions": runner.readiness() for name, runner in runners.items()}


def serve(build: Callable[[Any, Any], FastAPI], settings: Any, *, service: str) -> None:
    """Run a service's API: JSON logs, its port taken (`bind_port`), then uvicorn on it (no access log)."""
    import uvicorn

    from services.kit import loopwatch, taskdump
    from services.kit.collector import freeze_startup
    from services.kit.logging import configure_logging
    from services.kit.settings import CommonSettings

    class Server(uvicorn.Server):
        async def serve(self, sockets: Any = None) -> None:
            taskdump.install()  # SIGUSR1 logs what every task waits on
            await super().serve(sockets)

        watch: loopwatch.LoopWatch | None = None

        async def startup(self, sockets: Any = None) -> None:
            await listened(super().startup(sockets), self, sockets[0], settings)
            log.info("serving", extra=log_fields(host=settings.host, port=settings.port))
            self.watch = loopwatch.start()  # serving: logs where the loop is when it stops turning

        async def shutdown(self, sockets: Any = None) -> None:
            if self.watch is not None:
                self.watch.stop()  # the loop stops turning now by design
            await super().shutdown(sockets)

    common = CommonSettings()
    configure_logging(service=service, level=common.log_level, pseudonym_key=common.pseudonym_key)
    sock = bind_port(settings)
    app = build(common, settings)
    # The first query would configure the mappers: a second of CPU with the loop held on a busy host.
    sqlalchemy.orm.configure_mappers()
    freeze_startup()
    Server(server_config(app, settings, common)).run(sockets=[sock])


STARTUP_FAILURE = 3  # uvicorn's exit status for a server that could not start


def bind_port(settings: Any) -> socket.socket:
    """The service's socket, bound to the settings' host and port before anything else starts. uvicorn
    would run the app's lifespan (consumers joining their groups, the relay and scheduler claiming work)
    and bind after: a second process on a port a serving process holds did all that, then exited, and was
    restarted to do it again. Bound, not listening: asyncio listens when the app serves, so a connection
    made while the service starts is refused at once (a client tries another instance) rather than left
    waiting. So two processes starting at the same moment on one port both bind (neither listens yet): the
    later to serve fails to listen once its start-up is done, and stops that work (`cannot_listen`)."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
    try:
        sock.bind((settings.host, settings.port))  # refused while another process listens on it
    except OSError as exc:
        sock.close()
        raise cannot_listen(settings, exc) from exc
    return sock


async def listened(
    startup: Awaitable[None], server: uvicorn.Server, sock: socket.socket, settings: Any
) -> None:
    """uvicorn's start-up on the socket `bind_port` bound: the app's lifespan, then listening. When another
    process bound the port at the same moment and listened first, the lifespan's work is stopped again
    (as uvicorn does when it cannot bind a port itself) and the service exits as `bind_port` does. uvloop
    takes the socket over and, when it cannot listen, closes it and serves nothing, unsaid (asyncio
    raises): a duplicate of the socket tells."""
    seen = sock.dup()
    try:
        await startup
        if not seen.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            seen.listen()  # raises why the server could not: another process listens on the port
            raise OSError("the server does not listen on its socket")
    except OSError as exc:
        await server.lifespan.shutdown()
        raise cannot_listen(settings, exc) from exc
    finally:
        seen.close()


def cannot_listen(settings: Any, exc: OSError) -> SystemExit:
    """Log why the service cannot take its port; the exit to raise (uvicorn's for a failed start)."""
    log.error(
        "cannot listen: the port is taken or the address is not this host's",
        extra=log_fields(host=settings.host, port=settings.port, error=str(exc)),
    )
    return SystemExit(STARTUP_FAILURE)


def server_config(app: ASGIApp, settings: Any, common: CommonSettings) -> uvicorn.Config:
    """uvicorn's configuration of a service: its host and port, no access log, the proxies it believes."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        forwarded_allow_ips=common.forwarded_allow_ips,
    )
