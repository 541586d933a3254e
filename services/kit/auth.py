"""Operator identities: bearer JWTs carrying the officer's unit and role.

Development and tests sign with a shared secret (HS256) and `python -m services.kit.tokens`;
production verifies the issuer's RS256/ES256 signatures with the keys of an OIDC issuer's JWKS (fetched
and cached; rotated keys are taken without a restart) or with a static public key named in settings.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.kit.errors import Forbidden, NotAuthenticated
from services.kit.jwks import JwksKeys
from services.kit.ratelimit import AuthGuard
from services.kit.settings import Environment, Settings

Role = Literal["operator", "supervisor", "auditor"]
ROLES: tuple[Role, ...] = ("operator", "supervisor", "auditor")
DEV_SECRET = "dev-only-jwt-secret-change-me-0123456789"  # noqa: S105 - refused in production


class AuthSettings(Settings):
    model_config = SettingsConfigDict(env_prefix="STOPLINE_JWT_")

    secret: str = Field(DEV_SECRET, description="HS256 secret (development and tests only)")
    public_key: str = Field("", description="PEM public key of the production token issuer (RS256/ES256)")
    jwks_url: str = Field(
        "", description="the OIDC issuer's JWKS URL (its `jwks_uri`); keys are fetched, cached and refreshed"
    )
    jwks_timeout_s: float = Field(5.0, gt=0, description="timeout of one JWKS fetch")
    jwks_min_refresh_s: float = Field(
        30.0, ge=0, description="an unknown key id fetches the JWKS again at most this often"
    )
    jwks_max_age_s: float = Field(3600.0, gt=0, description="the cached JWKS is fetched again after this")
    issuer: str = Field("stopline-dev", description="expected `iss` claim")
    audience: str = Field("stopline", description="expected `aud` claim")


CLAIM_MAX = 100
ISSUER_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")


@dataclass(frozen=True)
class Officer:
    subject: str
    unit: str
    role: Role


class TokenVerifier:
    def __init__(self, settings: AuthSettings, *, environment: Environment) -> None:
        self.jwks: JwksKeys | None = None
        self.key: str | jwt.PyJWK
        if settings.jwks_url:
            self.jwks = JwksKeys(
                settings.jwks_url,
                timeout_s=settings.jwks_timeout_s,
                min_refresh_s=settings.jwks_min_refresh_s,
                max_age_s=settings.jwks_max_age_s,
            )
        elif settings.public_key:
            self.key = public_jwk(settings.public_key)
        elif environment == Environment.PRODUCTION:
            # The HS256 secret is shared with whoever signs, so production only verifies an issuer's keys.
            raise ValueError(
                "STOPLINE_JWT_JWKS_URL or STOPLINE_JWT_PUBLIC_KEY must be set in production "
                "(HS256 is for development)"
            )
        else:
            self.key = settings.secret
        self.settings = settings

    async def verify(self, token: str) -> Officer:
        key = self.key if self.jwks is None else await self._issuer_key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[_algorithm(key)],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            if token.count(".") != 2:  # an institution's API key, say, on an officer's route
                raise NotAuthenticated("not an officer's token: a JWT is three parts joined by dots") from exc
            raise NotAuthenticated(f"invalid token: {exc}") from exc
        role, unit = claims.get("role"), claims.get("unit")
        if role not in ROLES or not isinstance(unit, str) or not unit:
            raise NotAuthenticated("token lacks a valid `role` or `unit` claim")
        subject = str(claims["sub"])
        # Both name who acted in the audit trail and the records (120 characters, with a prefix such as
        # "notifier:"): a longer one is refused here rather than failing the write it would sign.
        if len(subject) > CLAIM_MAX or len(unit) > CLAIM_MAX:
            raise NotAuthenticated(f"the `sub` and `unit` claims must be at most {CLAIM_MAX} characters")
        # They are written as they are (records, the audit trail, logs): a control or format character
        # (a NUL PostgreSQL cannot store, a line break, a bidirectional override) is no one's name.
        if not (subject.isprintable() and unit.isprintable()):
            raise NotAuthenticated("the `sub` and `unit` claims must be printable text")
        return Officer(subject=subject, unit=unit, role=role)

    async def _issuer_key(self, token: str) -> jwt.PyJWK:
        assert self.jwks is not None
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            if token.count(".") != 2:  # an institution's API key, say, on an officer's route
                raise NotAuthenticated("not an officer's token: a JWT is three parts joined by dots") from exc
            raise NotAuthenticated(f"invalid token: {exc}") from exc
        key = await self.jwks.key(kid)
        if key.algorithm_name not in ISSUER_ALGORITHMS:
            raise NotAuthenticated(f"the issuer's key {kid} is not for {'/'.join(ISSUER_ALGORITHMS)}")
        return key


def _algorithm(key: str | jwt.PyJWK) -> str:
    """The one algorithm a token may use with `key`: the key's own (a token's header does not choose; with
    a raw key PyJWT would take the header's `alg` and fail with a TypeError on a key of the other kind)."""
    return "HS256" if isinstance(key, str) else key.algorithm_name


def public_jwk(pem: str) -> jwt.PyJWK:
    """The issuer's PEM public key as a JWK bound to its algorithm: RS256 for RSA, ESxxx by the curve."""
    loaded = serialization.load_pem_public_key(pem.encode())
    if isinstance(loaded, rsa.RSAPublicKey):
        return jwt.PyJWK(RSAAlgorithm.to_jwk(loaded, as_dict=True))
    if isinstance(loaded, ec.EllipticCurvePublicKey):
        return jwt.PyJWK(ECAlgorithm.to_jwk(loaded, as_dict=True))
    raise ValueError("STOPLINE_JWT_PUBLIC_KEY must be an RSA or EC public key (RS256/ES256)")


_bearer = HTTPBearer(auto_error=False)


def officer_dependency(
    verifier: TokenVerifier, *, guard: AuthGuard | None = None
) -> Callable[..., Coroutine[Any, Any, Officer]]:
    guard = guard or AuthGuard()

    async def current_officer(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Officer:
        try:
            if creds is None:
                raise NotAuthenticated("missing bearer token")
            officer = await verifier.verify(creds.credentials)
        except NotAuthenticated:
            guard.failed(request)
            raise
        guard.succeeded(f"officer:{officer.subject}")
        return officer

    return current_officer


def require_role(officer: Officer, *roles: Role) -> None:
    if officer.role not in roles:
        raise Forbidden(f"role {officer.role} may not do this; needs {' or '.join(roles)}")
