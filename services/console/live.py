"""Live pages without reload: server-sent events carrying re-rendered pieces of the page.

Each stream looks at the APIs every `live_interval_s` with the person's own credential, renders the
page's live pieces as the page itself renders them, and sends a piece only when it changed (ages and
countdowns tick in the browser, so an unchanged piece renders the same), then says when that look began
(`rendered`, the server's clock: the page's script waits for one begun after an action's answer before it
shows the piece that action was sent from again). A session that ends ends the
stream, and the page goes to the sign-in page: by its clocks, or ended elsewhere (signed out, revoked), as
the coordination API says when asked every few seconds (`ends.CHECK_S`); a stream the API will never show
anything (a case not there, or another unit's) ends saying why; while the API fails, it is asked less and
less often. A session and a client address have a few streams open at most (`slots.py`)."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from services.console import cases, portal, queue, supervisor, web
from services.console.api import ApiError
from services.console.session import User
from services.kit.ratelimit import client_address

Pieces = Callable[[], Awaitable[dict[str, str]]]
HEARTBEAT_S = 15.0
ENDED = (403, 404, 422)  # asked again, the API would answer the same: the stream ends
BACKOFF_MAX_S = 30.0


async def _stream(request: Request, user: User, pieces: Pieces) -> AsyncIterator[bytes]:
    interval = web.console(request).settings.live_interval_s
    wait = interval
    sent: dict[str, str] = {}
    quiet_since = time.monotonic()
    yield web.SSE_RETRY
    sessions = web.console(request).sessions
    while not await request.is_disconnected():
        if time.time() >= user.ends_at:
            yield web.SSE_SIGNED_OUT
            return
        if sessions.idle(user, time.time()):
            # Idle as this stream's cookie knew it; the officer's actions since may have renewed it: the
            # browser connects again with the cookie it has now, and that connection says which.
            return
        try:
            await web.still_open(web.console(request), user)  # (asks the API every `ends.CHECK_S` at most)
            began = time.time()
            now = await pieces()
        except ApiError as exc:
            if exc.status == 401:
                yield web.SSE_SIGNED_OUT
                return
            if exc.status in ENDED:
                yield web.sse_event("end", {"status": exc.status, "message": exc.message})
                return
            now = {}  # the API is away for a moment: keep what the page shows, try again, less often
            wait = min(wait * 2, BACKOFF_MAX_S)
        else:
            wait = interval
        for target, html in now.items():
            if sent.get(target) != html:
                sent[target] = html
                quiet_since = time.monotonic()
                yield web.sse_event("swap", {"target": target, "html": html})
        if now:
            quiet_since = time.monotonic()
            yield web.sse_event("rendered", {"at": began})
        if time.monotonic() - quiet_since > HEARTBEAT_S:
            quiet_since = time.monotonic()
            yield b": still here\n\n"
        await asyncio.sleep(wait)


class _Held(StreamingResponse):
    """A stream that gives its slot back when the connection is done with, however it ends (a stream the
    client left before its first byte is never iterated, so its generator's `finally` would not run)."""

    def __init__(self, stream: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        super().__init__(stream, media_type="text/event-stream", headers=web.SSE_HEADERS)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()


def _response(request: Request, user: User, pieces: Pieces) -> Response:
    release = web.console(request).slots.take(user.csrf, client_address(request))
    if release is None:  # (the page's script tries again later, backing off)
        return Response("too many live views open", 429, headers={"Retry-After": "30"})
    return _Held(_stream(request, user, pieces), release)


def router() -> APIRouter:
    api = APIRouter(prefix="/live", include_in_schema=False)
    Officer = Annotated[User, Depends(web.officer)]
    Staff = Annotated[User, Depends(web.institution_staff)]

    @api.get("/queue")
    async def live_queue(
        request: Request, user: Officer, where: Annotated[queue.QueueFilter, Depends(queue.filters)]
    ) -> Response:
        async def pieces() -> dict[str, str]:
            items = await queue.incidents(request, user, where)
            return {"queue": web.fragment(request, "_queue.html", user=user, items=items, where=where)}

        return _response(request, user, pieces)

    @api.get("/cases/{case_id}")
    async def live_case(
        request: Request, user: Officer, case_id: Annotated[str, Path(pattern="^[0-9a-f-]{36}$")]
    ) -> Response:
        return _response(request, user, lambda: cases.live_pieces(request, user, case_id))

    @api.get("/supervisor")
    async def live_supervisor(request: Request, user: Officer) -> Response:
        return _response(request, user, lambda: supervisor.live_pieces(request, user))

    @api.get("/portal")
    async def live_portal(request: Request, user: Staff) -> Response:
        return _response(request, user, lambda: portal.live_pieces(request, user))

    return api
