"""Whether an officer's console session was ended elsewhere (signed out, revoked), as the coordination API
says. A positive answer is taken for `CHECK_S` by this console instance, so a page costs no extra call to
the API while it holds (at most one a session every `CHECK_S`), and an end holds on every instance within
`CHECK_S`; a live stream, which asks before each look at the APIs, is closed within it too. And the
sign-outs the API did not take yet, tried again every `CHECK_S` (`SignOuts`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import httpx
from prometheus_client import Counter

from services.console.api import Api, ApiError
from services.console.session import User
from services.console.settings import ConsoleSettings

log = logging.getLogger(__name__)

CHECK_S = 5.0
CHECKS = Counter(
    "stopline_console_session_checks_total",
    "officer sessions checked: open (asked), cached (open within CHECK_S), ended, unavailable (no answer)",
    ["outcome"],
)


class Checks:
    """The sessions this instance found open lately, each until `CHECK_S` after the API said so; at most
    `size` of them (the oldest answer is forgotten first, so it is asked again)."""

    def __init__(self, *, check_s: float = CHECK_S, size: int = 10_000) -> None:
        self.check_s = check_s
        self.size = size
        self.open_until: OrderedDict[str, float] = OrderedDict()

    def fresh(self, session_id: str) -> bool:
        until = self.open_until.get(session_id)
        if until is not None and time.monotonic() < until:
            return True
        self.open_until.pop(session_id, None)
        return False

    def opened(self, session_id: str) -> None:
        self.open_until.pop(session_id, None)
        self.open_until[session_id] = time.monotonic() + self.check_s
        while len(self.open_until) > self.size:
            self.open_until.popitem(last=False)

    def forget(self, session_id: str) -> None:
        self.open_until.pop(session_id, None)


def _ending(user: User) -> str:
    return f"/v1/officer/sessions/{user.session_id}" if user.officer else "/v1/institution/sessions/current"


def _key(user: User) -> str:
    return user.session_id if user.officer else user.token


async def end(api: Api, user: User) -> None:
    """The session ended at the coordination API (ApiError if it did not answer, or refused otherwise)."""
    try:
        await api.call("DELETE", _ending(user))
    except ApiError as exc:
        if exc.status != 401:
            raise
        # (401: ended already)


class SignOuts:
    """Sign-outs the coordination API did not take (it did not answer). The browser's cookie is removed all
    the same, at once: the person leaving (a shared PC) is signed out there whatever the API does. The end
    at the API is then tried every `CHECK_S` by this instance, until it is done or the session ends by
    itself; meanwhile this instance refuses the session, and the others refuse it as soon as it is done
    (a copy of the cookie may work on them until then). Kept in this instance's memory, one per session
    signed out, each no longer than the session would have lasted (a day at most); what a stopped instance
    had left is logged as an error naming whom to revoke (`revoke-sessions`)."""

    def __init__(
        self, http: httpx.AsyncClient, settings: ConsoleSettings, *, retry_s: float = CHECK_S
    ) -> None:
        self.http, self.settings, self.retry_s = http, settings, retry_s
        self.left: dict[str, User] = {}

    def add(self, user: User) -> None:
        self.left[_key(user)] = user
        log.warning("sign-out not taken by coordination yet: retried", extra={"fields": _who(user)})

    def pending(self, user: User) -> bool:
        return _key(user) in self.left

    async def retry(self) -> None:
        """One round: each left sign-out tried again, or dropped once its session is past its end."""
        for key, user in list(self.left.items()):
            if time.time() >= user.ends_at:
                del self.left[key]
                log.info(
                    "sign-out not taken by coordination; the session has ended by itself",
                    extra={"fields": _who(user)},
                )
                continue
            try:
                await end(Api(self.http, self.settings.coordination_url, user.token), user)
            except ApiError:
                continue
            del self.left[key]
            log.info("sign-out taken by coordination", extra={"fields": _who(user)})

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.retry_s)
                await self.retry()
        finally:
            for user in self.left.values():
                log.error(
                    "console stopped with a sign-out coordination did not take: end the session with "
                    "`python -m services.coordination.officers revoke-sessions` (officers) or the "
                    "institution user's new password",
                    extra={"fields": _who(user)},
                )


def _who(user: User) -> dict[str, str]:
    return {"kind": user.kind, "subject": user.subject, "unit": user.unit}
