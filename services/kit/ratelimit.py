"""Rate limits: a token bucket per key (a credential, a client address, a link's token), in the memory of
one process. A refusal is `TooManyRequests`, answered 429 with `Retry-After`."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.errors import TooManyRequests
from services.kit.settings import Settings


class RateLimitSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_RATE_")

    credential_per_s: float = Field(
        200.0, gt=0, description="requests a second per credential (API key, operator); bursts of twice"
    )
    auth_failures_per_min: float = Field(
        30.0,
        gt=0,
        description="failed authentications a minute per client address; wrong passwords a minute per "
        "institution user and address (ten times this per user from anywhere)",
    )
    citizen_per_min: float = Field(
        30.0, gt=0, description="answers a minute per client address and per answer link"
    )
    receipts_per_s: float = Field(500.0, gt=0, description="delivery receipts a second per client address")
    password_checks: int = Field(
        8,
        gt=0,
        description="sign-ins checking a password at once, per process (each some tens of ms of CPU); "
        "more are answered 503 with Retry-After",
    )


class RateLimiter:
    """Token buckets of `burst` tokens refilled at `per_s`; the least recently used keys are dropped past
    `max_keys`, so memory is bounded whatever the keys an attacker makes up."""

    def __init__(self, *, per_s: float, burst: float, max_keys: int = 100_000) -> None:
        self.per_s = per_s
        self.burst = max(1.0, burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)

    def retry_after(self, key: str, *, now: float | None = None) -> float | None:
        """Take one token for `key`: None if there was one, else the seconds until there is."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.per_s)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            wait = None
        else:
            self._buckets[key] = (tokens, now)
            wait = (1 - tokens) / self.per_s
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def wait(self, key: str, *, now: float | None = None) -> float | None:
        """Without taking a token: None if `key` has one, else the seconds until it has."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.per_s)
        return None if tokens >= 1 else (1 - tokens) / self.per_s

    def take(self, key: str, what: str) -> None:
        """Take one token or raise `TooManyRequests` saying what was limited."""
        wait = self.retry_after(key)
        if wait is not None:
            raise TooManyRequests(f"too many {what}; retry later", retry_after_s=math.ceil(wait))


class AuthGuard:
    """The limits of an authentication path: requests per credential, and failed attempts per client
    address. An address out of failures (`spent`) has only credentials verified recently taken, from the
    caches, with nothing looked up for the rest (429): many clients may share one address behind a proxy,
    and a guesser among them must neither lock their keys out nor cost a lookup per guess."""

    def __init__(self, settings: RateLimitSettings | None = None) -> None:
        settings = settings or RateLimitSettings()
        self.credentials = RateLimiter(per_s=settings.credential_per_s, burst=2 * settings.credential_per_s)
        self.failures = per_minute(settings.auth_failures_per_min)

    def spent(self, request: Request) -> TooManyRequests | None:
        """The refusal for the request's address if it is out of failures now, else None."""
        wait = self.failures.wait(client_address(request))
        if wait is None:
            return None
        return TooManyRequests("too many failed authentications; retry later", retry_after_s=math.ceil(wait))

    def failed(self, request: Request) -> None:
        """Count a failed authentication; raises TooManyRequests when its address is out of failures."""
        self.failures.take(client_address(request), "failed authentications")

    def succeeded(self, credential: str) -> None:
        self.credentials.take(credential, "requests with this credential")


def per_minute(count: float) -> RateLimiter:
    return RateLimiter(per_s=count / 60, burst=count)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def address_limit(limiter: RateLimiter, what: str) -> Callable[..., Coroutine[Any, Any, None]]:
    """A route dependency limiting requests per client address."""

    async def limited(request: Request) -> None:
        limiter.take(client_address(request), what)

    return limited
