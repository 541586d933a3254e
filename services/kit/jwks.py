"""An OIDC issuer's signing keys (its JWKS), fetched over HTTP and cached, so the issuer can rotate keys
without a restart: a token naming an unknown key id (`kid`) makes the cache fetch the set again, at most
once per `min_refresh_s` (a flood of made-up kids costs the issuer nothing); a set older than `max_age_s`
is fetched again whatever the token names, so a key withdrawn from the set stops being trusted at the
first fetch that succeeds after that. A fetch that fails keeps the keys it had (officers keep signing in
through the issuer's outage; a withdrawn key then stays trusted until the issuer answers again); a key id
not among them is then Unavailable (503: the issuer may have published it), not refused; every fetch has a
timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt

from services.kit.errors import NotAuthenticated, Unavailable


class JwksKeys:
    def __init__(
        self, url: str, *, timeout_s: float = 5.0, min_refresh_s: float = 30.0, max_age_s: float = 3600.0
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.min_refresh_s = min_refresh_s
        self.max_age_s = max_age_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self._failed = False  # the last fetch failed: a key id we do not know may be one the issuer has
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: Any) -> jwt.PyJWK:
        """The key a token names; refreshes the set when the kid is unknown (or the set is old)."""
        if not isinstance(kid, str) or not kid:
            raise NotAuthenticated("token names no key id (kid)")
        if kid not in self._keys or self._stale():
            async with self._lock:  # one fetch for all the requests that wait on it
                # (checked again: the fetch another request made meanwhile may have answered this one)
                unknown = kid not in self._keys and time.monotonic() - self._fetched_at >= self.min_refresh_s
                if unknown or self._stale():  # stale: a key the issuer withdrew is not trusted past max_age_s
                    await self._fetch()
        found = self._keys.get(kid)
        if found is None and self._failed:
            raise Unavailable("the token issuer's keys could not be fetched to find this token's key")
        if found is None:
            raise NotAuthenticated("token signed with a key the issuer does not publish")
        return found

    def _stale(self) -> bool:
        return time.monotonic() - self._fetched_at > self.max_age_s

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()  # a failed fetch counts too: no retry storm on a down issuer
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                response = await http.get(self.url)
                response.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            self._failed = True
            if self._keys:
                return  # keep the keys we have; an unknown kid tries again after min_refresh_s
            raise Unavailable(f"the token issuer's keys could not be fetched: {type(exc).__name__}") from exc
        self._keys = {k.key_id: k for k in keys.keys if k.key_id}
        self._failed = False
