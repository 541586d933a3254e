"""What every console page is built with: the templates, the signed-in person, CSRF checks, flash
messages, the API clients and the one way a page is rendered or an action answered."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson
from cryptography.exceptions import InvalidTag
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.console import ends, i18n, oidc, reasons
from services.console.api import Api, ApiError
from services.console.session import COOKIE, Sessions, User
from services.console.settings import ConsoleSettings
from services.console.slots import Slots
from services.kit.sealing import Sealer

HERE = Path(__file__).parent
LANG_COOKIE = "stopline_lang"
FLASH_COOKIE = "stopline_flash"
# The prefecture keeps Beijing time (no daylight saving): what officers read on their clocks.
LOCAL = timezone(timedelta(hours=8))
ZONE = LOCAL.tzname(None)  # "UTC+08:00": said once on every page, beside the language


class SignInRequired(Exception):
    """No valid session: the person is sent to the sign-in page (and back after it), told `why` (a key of
    `i18n`) if there is more to say than that the session ended."""

    def __init__(self, why: str | None = None) -> None:
        super().__init__(why)
        self.why = why


class NotAllowed(Exception):
    """The signed-in person's kind or role has no business on this page."""


@dataclass
class Console:
    settings: ConsoleSettings
    sessions: Sessions
    http: httpx.AsyncClient
    templates: Environment
    sealer: Sealer
    dev_tokens: bool
    slots: Slots
    checks: ends.Checks
    signouts: ends.SignOuts
    oidc: oidc.Provider | None = None

    def coordination(self, user: User | None) -> Api:
        return Api(self.http, self.settings.coordination_url, user.token if user else None)

    def notifier(self, user: User | None) -> Api:
        return Api(self.http, self.settings.notifier_url, user.token if user else None)


ACTION_KEYS = uuid.UUID("0c9f3f4e-6b1d-4a8e-9d52-3f1e7a2b5c60")  # the namespace of `action_key`


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=money, when=when, iso=iso, short=short, span=span, reason=reasons.in_language, recorded=recorded
    )
    # A form that issues an instruction carries a key of its own: posted twice, it issues one.
    env.globals.update(request_id=lambda: str(uuid.uuid4()), action_key=action_key, zone=ZONE)
    return env


def action_key(user: User, instruction: dict[str, Any], kind: str, instructions: list[dict[str, Any]]) -> str:
    """The request key of a follow-up form (`kind`) of an instruction on the case page: the same in every
    live render while the case's instructions stay as they are (a fresh key each render would change the
    piece, swapped in every second, and no longer tell a double click), another once any of them moves on
    (a freeze declined may be asked again; a second extension after the first is in force), and per
    session."""
    case_state = sorted(f"{i.get('id')}:{i.get('status')}:{i.get('renewals')}" for i in instructions)
    state = "|".join([user.csrf, str(instruction.get("id")), kind, *case_state])
    return str(uuid.uuid5(ACTION_KEYS, state))


def console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    return chosen if chosen in i18n.LANGUAGES else console(request).settings.language


def current_user(request: Request) -> User | None:
    return console(request).sessions.open(request.cookies.get(COOKIE))


def sealed_user(request: Request) -> User:
    """The session its cookie holds, not asked of the API (a sign-out: done whether the API answers)."""
    user = current_user(request)
    if user is None:
        raise SignInRequired
    return user


async def signed_in(request: Request) -> User:
    user = sealed_user(request)
    await still_open(console(request), user)
    request.state.user = user  # (for `done`, which renews it: the cookie is opened once a request)
    return user


async def still_open(c: Console, user: User) -> None:
    """Refused (ApiError 401: to the sign-in page) if the session was ended since its cookie was sealed:
    signed out (a copy of the cookie does not see it), or revoked by an administrator. The coordination API
    keeps officers' sessions, so an end holds on every console instance within `ends.CHECK_S` (an answer
    that it is open is taken that long); an institution user's session is its token, which the APIs check
    on every call."""
    if c.signouts.pending(user):  # (signed out here, the API not told yet: a copy of the cookie)
        raise SignInRequired
    if not user.officer:
        return
    if not user.session_id:  # sealed by a console from before officers' sessions were kept at the API
        raise SignInRequired("signin_again_upgraded")
    if c.checks.fresh(user.session_id):
        ends.CHECKS.labels("cached").inc()
        return
    try:
        await c.coordination(user).get(f"/v1/officer/sessions/{user.session_id}")
    except ApiError as exc:
        ends.CHECKS.labels("ended" if exc.status == 401 else "unavailable").inc()
        raise
    ends.CHECKS.labels("open").inc()
    c.checks.opened(user.session_id)


async def officer(request: Request) -> User:
    user = await signed_in(request)
    if not user.officer:
        raise NotAllowed
    return user


async def institution_staff(request: Request) -> User:
    user = await signed_in(request)
    if user.officer:
        raise NotAllowed
    return user


def same_origin(request: Request) -> bool:
    """A post sent from the console's own pages, as its Origin (or, without one, its Referer) says: the
    console as this request reached it, or as `public_url` names it. A post with neither is let through:
    browsers name the page a form was posted from, and it is a browser that is made to post across
    sites."""
    sender = request.headers.get("origin") or request.headers.get("referer")
    if not sender:
        return True
    try:
        parts = urlsplit(sender)
    except ValueError:
        return False
    public = urlsplit(console(request).settings.public_url)
    here = (request.url.scheme, request.url.netloc)
    return (parts.scheme, parts.netloc) in (here, (public.scheme, public.netloc))


def check_csrf(user: User, token: str | None) -> None:
    if not token or not hmac.compare_digest(token.encode(), user.csrf.encode()):
        raise ApiError(403, "csrf", "the form is stale or not from this console; reload the page and retry")


# ── rendering ─────────────────────────────────────────────────────────────────────────────────
def render(
    request: Request,
    name: str,
    *,
    user: User | None,
    status: int = 200,
    notice: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page; `notice` (kind, text) is shown as a flash message is (a refused form shown again)."""
    c = console(request)
    lang = language(request)
    pending = open_sealed(request, FLASH_COOKIE)
    flash = notice or pending
    html = c.templates.get_template(name).render(
        request=request,
        user=user,
        lang=lang,
        t=i18n.translator(lang),
        flash=flash,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(html, status)
    if pending is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    keep_alive(response, c, user)
    return response


def keep_alive(response: Response, c: Console, user: User | None) -> None:
    """A page or an action is the session in use: its idle clock starts again (a new cookie at most once
    a minute)."""
    if user is not None and (fresh := c.sessions.touched(user)) is not None:
        set_session(response, c, fresh)


def fragment(request: Request, name: str, *, user: User, **context: Any) -> str:
    """A piece of a page, rendered as the page renders it (for live updates)."""
    lang = language(request)
    template = console(request).templates.get_template(name)
    return template.render(request=request, user=user, lang=lang, t=i18n.translator(lang), **context)


def set_session(response: Response, c: Console, user: User) -> None:
    response.set_cookie(
        COOKIE,
        c.sessions.seal(user),
        max_age=int(max(1, user.ends_at - user.seen_at)),
        httponly=True,
        secure=c.settings.secure_cookies,
        samesite="lax",
        path="/",
    )


def back(request: Request, default: str) -> str:
    """Where an action returns to: the form's own page, never another site."""
    target = request.headers.get("referer") or default
    try:
        parts = urlsplit(target)
    except ValueError:  # not a URL ("http://["): never an error, the action may have been done already
        return default
    if parts.netloc and parts.netloc != request.url.netloc:
        return default
    path = parts.path or default
    if path.startswith("//") or "\\" in path:  # `//elsewhere/x` is another site's address as a Location
        return default
    return path + (f"?{parts.query}" if parts.query else "")


def set_sealed(
    request: Request, response: Response, name: str, value: Any, *, max_age: int, path: str = "/"
) -> None:
    """A short-lived cookie of the console's own (a flash message, a sign-in under way), sealed."""
    c = console(request)
    sealed = c.sealer.seal(orjson.dumps(value), context=name.encode())
    response.set_cookie(
        name,
        base64.urlsafe_b64encode(sealed).decode(),
        max_age=max_age,
        httponly=True,
        secure=c.settings.secure_cookies,
        samesite="lax",
        path=path,
    )


def open_sealed(request: Request, name: str) -> Any:
    """What `set_sealed` put in the cookie `name`, or None when it is missing, changed or foreign."""
    raw = request.cookies.get(name)
    if not raw or len(raw) > 4096:
        return None
    try:
        return orjson.loads(
            console(request).sealer.open(base64.urlsafe_b64decode(raw.encode()), context=name.encode())
        )
    except (InvalidTag, binascii.Error, ValueError, orjson.JSONDecodeError):
        return None


def flash(request: Request, response: Response, kind: str, text: str) -> None:
    set_sealed(request, response, FLASH_COOKIE, {"kind": kind, "text": text[:500]}, max_age=60)


def done(request: Request, *, to: str, ok: str | None = None, error: ApiError | None = None) -> Response:
    """The answer to an action: JSON for the page's own script (it stays where it is and the live view
    shows the change: one begun after `at`, the server's clock when the action was done), otherwise a
    redirect back with the outcome as a flash message."""
    t = i18n.translator(language(request))
    text = t(ok) if ok else ""
    if error is not None:
        text = refusal(t, error)
    response: Response
    if "application/json" in request.headers.get("accept", ""):
        status = 200 if error is None else error.status
        answer: dict[str, object] = {"ok": error is None, "message": text}
        if error is None:
            answer["at"] = time.time()
        response = JSONResponse(answer, status)
    else:
        response = RedirectResponse(to, 303)
        if text:
            flash(request, response, "error" if error else "ok", text)
    keep_alive(response, console(request), getattr(request.state, "user", None))
    return response


# Renders a refused form's page again, given the form's key (request_id, response_id), the notice and the
# status to answer with.
ShowAgain = Callable[[str, dict[str, str], int], Awaitable[Response]]


async def shown_again(request: Request, error: ApiError, *, to: str, key: str, page: ShowAgain) -> Response:
    """The answer to a page's form the API refused: its page again, with what was typed in it and the
    refusal (`page`). The form keeps its key only if the refusal may hide a request that landed all the
    same (no answer, a 5xx): sent again, it is done once; otherwise it gets a new one, so that what is sent
    corrected is not taken for the refused request sent again. The page's own script, or a page that
    cannot be shown now, gets `done`'s answer (back to `to`, with the refusal)."""
    if "application/json" not in request.headers.get("accept", ""):
        notice = {"kind": "error", "text": refusal(i18n.translator(language(request)), error)}
        with contextlib.suppress(ApiError):
            return await page(key if error.status >= 500 else str(uuid.uuid4()), notice, error.status)
    return done(request, to=to, error=error)


def refusal(t: Callable[[str], str], error: ApiError) -> str:
    """What the officer reads of a refusal: the API's message, or the console's words with the instructions
    that keep a case open, when the refusal names them (`details.blocking` of a close)."""
    blocking = error.details.get("blocking") if isinstance(error.details, dict) else None
    if not isinstance(blocking, list) or not blocking:
        return f"{t('refused')} ({error.status}): {error.message}"
    items = "; ".join(
        " ".join((t(f"kind_{b.get('kind')}"), short(b.get("instruction_id")), t(f"status_{b.get('status')}")))
        for b in blocking
        if isinstance(b, dict)
    )
    return f"{t('refused')} ({error.status}): {t('refused_open_work')} {items}"


# Server-sent events (the live pages, `live.py`): how long the browser waits to connect again, and the
# event that takes the page to the sign-in page.
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
SSE_RETRY = b"retry: 3000\n\n"


def sse_event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


SSE_SIGNED_OUT = sse_event("signedout", {})


def sign_in_redirect(request: Request, why: str | None = None) -> Response:
    """Where a request without a session goes: a page to the sign-in page; the page's own script (an
    action, a live view) is told so in its own terms, and takes the page there (a redirect would be
    followed silently, and the action taken for done). A reason (`why`, a key of `i18n`) is said on the
    sign-in page, and the cookie it was about is removed, so that it is said once."""
    accept = request.headers.get("accept", "")
    response: Response
    if "text/event-stream" in accept:
        response = Response(SSE_RETRY + SSE_SIGNED_OUT, media_type="text/event-stream", headers=SSE_HEADERS)
    elif "application/json" in accept:
        message = i18n.translator(language(request))(why or "session_ended")
        response = JSONResponse({"ok": False, "message": message, "signin": "/signin"}, 401)
    else:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/signin?next={quote(target, safe='')}", 303)
        if why:
            flash(request, response, "error", i18n.translator(language(request))(why))
    if why:
        response.delete_cookie(COOKIE, path="/")
    return response


# ── formatting ────────────────────────────────────────────────────────────────────────────────
def money(value: Any) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"¥{Decimal(str(value)):,.2f}"
    except InvalidOperation:
        return str(value)


def parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def when(value: Any, fmt: str = "%m-%d %H:%M:%S") -> str:
    at = parse_time(value)
    if at is None:
        return "—"
    try:
        return at.astimezone(LOCAL).strftime(fmt)
    except OverflowError:  # the API takes up to the end of year 9999 in UTC, past it here: said in UTC
        return at.astimezone(UTC).strftime(fmt) + " UTC"


def iso(value: Any) -> str:
    at = parse_time(value)
    return at.astimezone(UTC).isoformat() if at else ""


def recorded(value: Any) -> str:
    """An audit entry's value as a reader reads it: lists joined, nothing as a dash, a mapping as JSON (not
    Python's own spelling: `['…']`, `None`)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(recorded(v) for v in value) or "—"
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def span(seconds: float | None) -> str:
    """A duration as a desk reads it: tenths under 10 s (a stop-payment 0.49 s after its alert is not
    "0 s"), then seconds, minutes, hours; the unit chosen by the value as it will be shown."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if round(seconds, 1) < 10:
        return f"{seconds:.1f} s"
    if round(seconds) < 120:
        return f"{seconds:.0f} s"
    if round(seconds / 60) < 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def short(value: Any, n: int = 8) -> str:
    text = str(value or "")
    return text[:n]
