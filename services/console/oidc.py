"""Officers' sign-in through the organisation's OpenID Connect provider (production): the authorization
code flow with PKCE. The console checks the ID token (signature by the provider's published keys,
issuer, audience, expiry and the nonce it sent) and keeps the access token as the officer's credential
for the APIs, which verify it themselves on every call."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from services.kit.auth import ROLES

DISCOVERY = "/.well-known/openid-configuration"
CACHE_S = 3600.0


class SignInFailed(Exception):
    """The provider's answer could not be used: the person is told and may try again."""


@dataclass(frozen=True)
class Attempt:
    """What the console remembers between sending the person to the provider and their return."""

    state: str
    nonce: str
    verifier: str
    next: str

    @classmethod
    def new(cls, next: str) -> Attempt:
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), next)

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class Identity:
    subject: str
    role: str
    unit: str
    access_token: str
    ends_at: float


class Provider:
    def __init__(self, http: httpx.AsyncClient, *, issuer: str, client_id: str, client_secret: str) -> None:
        self.http = http
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, dict[str, Any]] | None = None

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url)
            response.raise_for_status()
            found: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(f"the identity provider did not answer at {url}") from exc
        return found

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or self._metadata[0] < time.monotonic():
            self._metadata = (time.monotonic() + CACHE_S, await self._get(self.issuer + DISCOVERY))
        return self._metadata[1]

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        for refresh in (False, True):
            if refresh or self._keys is None or self._keys[0] < time.monotonic():
                jwks_uri = (await self.metadata())["jwks_uri"]
                self._keys = (time.monotonic() + CACHE_S, await self._get(jwks_uri))
            for key in self._keys[1].get("keys", []):
                if kid is None or key.get("kid") == kid:
                    return jwt.PyJWK(key)
        raise SignInFailed("the ID token is signed with a key the provider does not publish")

    async def authorize_url(self, attempt: Attempt, redirect_uri: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile",
            "state": attempt.state,
            "nonce": attempt.nonce,
            "code_challenge": attempt.challenge,
            "code_challenge_method": "S256",
        }
        return f"{(await self.metadata())['authorization_endpoint']}?{urlencode(query)}"

    async def finish(self, *, code: str, attempt: Attempt, redirect_uri: str) -> Identity:
        """Exchange the code; check the ID token; the officer's identity and access token."""
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": attempt.verifier,
        }
        try:
            response = await self.http.post(
                (await self.metadata())["token_endpoint"],
                data=body,
                auth=(self.client_id, self.client_secret),
            )
            response.raise_for_status()
            tokens = response.json()
            id_token, access_token = str(tokens["id_token"]), str(tokens["access_token"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise SignInFailed("the identity provider did not give tokens for this sign-in") from exc
        try:
            header = jwt.get_unverified_header(id_token)
            key = await self._key(header.get("kid"))
            claims = jwt.decode(
                id_token,
                key,
                algorithms=["RS256", "ES256"],
                audience=self.client_id,
                issuer=self.issuer,
                options={"require": ["exp", "sub", "iss", "aud", "nonce"]},
            )
        except jwt.PyJWTError as exc:
            raise SignInFailed(f"the ID token does not check: {exc}") from exc
        if claims.get("nonce") != attempt.nonce:
            raise SignInFailed("the ID token is not for this sign-in (nonce)")
        role, unit = claims.get("role"), claims.get("unit")
        if role not in ROLES or not isinstance(unit, str) or not unit:
            raise SignInFailed("the provider did not say the officer's role and unit")
        ends = float(claims["exp"])
        if isinstance(tokens.get("expires_in"), int | float):
            ends = min(ends, time.time() + float(tokens["expires_in"]))
        return Identity(str(claims["sub"]), str(role), unit, access_token, ends)
