"""Institution API keys: `slk_<key id>.<secret>`. Only a SHA-256 of the secret is stored; the secret
is 256 random bits, so a fast hash is enough (nothing to brute-force as with passwords)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.institutions.models import ApiCredential, Institution
from services.kit.audit import service as audit
from services.kit.errors import Conflict, InvalidInput, NotAuthenticated
from streams.schemas.events import SOURCES, institution_id_problem

log = logging.getLogger(__name__)

PREFIX = "slk_"
KEY_ID = re.compile(r"[0-9a-f]{12}")  # secrets.token_hex(6), as issue_key makes them
UNKNOWN_TTL_S = 10.0
UNKNOWN_MAX = 10_000
ADMINISTRATOR = audit.Actor("institutions-cli", "system", "stopline")  # who acts through the CLI


@dataclass(frozen=True)
class Caller:
    institution_id: str
    kind: str
    user: str | None = None  # an institution user signed in (the console); None: the API key

    @property
    def name(self) -> str:
        """Who acted, as the audit trail names it: the institution, or its user."""
        return f"{self.institution_id}/{self.user}" if self.user else self.institution_id


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(raw: str) -> tuple[str, str]:
    if not raw.startswith(PREFIX) or "." not in raw:
        raise NotAuthenticated("malformed API key")
    key_id, _, secret = raw[len(PREFIX) :].partition(".")
    if not KEY_ID.fullmatch(key_id) or not secret:
        raise NotAuthenticated("malformed API key")
    return key_id, secret


async def create_institution(
    session: AsyncSession, *, institution_id: str, kind: str, name: str
) -> Institution:
    if kind not in SOURCES:
        raise InvalidInput(f"kind must be one of {', '.join(SOURCES)}")
    if problem := institution_id_problem(institution_id):
        raise InvalidInput(f"institution id {problem}", details=[{"field": "id", "reason": problem}])
    if await session.get(Institution, institution_id) is not None:
        raise Conflict(f"institution {institution_id} exists")
    institution = Institution(id=institution_id, kind=kind, name=name)
    session.add(institution)
    await session.flush()
    await audit.record(
        session,
        actor=ADMINISTRATOR,
        action="institution.created",
        entity_type="institution",
        entity_id=institution_id,
        after={"kind": kind, "name": name},
    )
    log.info("institution created", extra={"fields": {"institution": institution_id, "kind": kind}})
    return institution


async def issue_key(session: AsyncSession, *, institution_id: str) -> str:
    """Create a credential and return the full key; it is shown once and never stored."""
    if await session.get(Institution, institution_id) is None:
        raise InvalidInput(f"no institution {institution_id}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(ApiCredential(key_id=key_id, institution_id=institution_id, secret_sha256=sha256(secret)))
    await session.flush()
    # The key id names the key; its secret is in neither the trail nor the log.
    await audit.record(
        session,
        actor=ADMINISTRATOR,
        action="api_key.issued",
        entity_type="api_key",
        entity_id=key_id,
        after={"institution": institution_id},
    )
    log.info("api key issued", extra={"fields": {"institution": institution_id, "key_id": key_id}})
    return f"{PREFIX}{key_id}.{secret}"


async def revoke_key(session: AsyncSession, *, institution_id: str, key_id: str) -> None:
    """Revoke one of an institution's keys (rotation: issue a new key, switch to it, revoke the old one);
    the services refuse it within their cache's lifetime (`CredentialVerifier.ttl_s`)."""
    revoked = await session.execute(
        update(ApiCredential)
        .where(
            ApiCredential.key_id == key_id,
            ApiCredential.institution_id == institution_id,
            ApiCredential.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    if revoked.rowcount == 0:  # type: ignore[attr-defined]
        raise InvalidInput(f"no unrevoked key {key_id} of {institution_id}")
    await audit.record(
        session, actor=ADMINISTRATOR, action="api_key.revoked", entity_type="api_key", entity_id=key_id
    )
    log.info("api key revoked", extra={"fields": {"institution": institution_id, "key_id": key_id}})


class CredentialVerifier:
    """Checks API keys against the database, caching known keys briefly (revocation takes `ttl_s`) and
    unknown key ids for `UNKNOWN_TTL_S`, so made-up keys cost no database lookup each."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, ttl_s: float = 30.0) -> None:
        self.sessions = sessions
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, str, Caller]] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()  # key id → until when it is known unknown
        self.lookups = 0

    async def verify(self, raw_key: str) -> Caller:
        key_id, secret = parse_key(raw_key)
        until = self._unknown.get(key_id)
        if until is not None and until > time.monotonic():
            raise NotAuthenticated("unknown or revoked API key")
        cached = self._cache.get(key_id)
        if cached is None or cached[0] < time.monotonic():
            cached = await self._load(key_id)
        _, digest, caller = cached
        if not hmac.compare_digest(digest, sha256(secret)):
            raise NotAuthenticated("unknown or revoked API key")
        return caller

    def known(self, raw_key: str) -> Caller | None:
        """The caller of a key verified recently (cached), else None: nothing is looked up."""
        try:
            key_id, secret = parse_key(raw_key)
        except NotAuthenticated:
            return None
        cached = self._cache.get(key_id)
        if cached is None or cached[0] < time.monotonic():
            return None
        return cached[2] if hmac.compare_digest(cached[1], sha256(secret)) else None

    async def _load(self, key_id: str) -> tuple[float, str, Caller]:
        self.lookups += 1
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(ApiCredential.secret_sha256, Institution.id, Institution.kind)
                    .join(Institution, Institution.id == ApiCredential.institution_id)
                    .where(ApiCredential.key_id == key_id, ApiCredential.revoked_at.is_(None))
                )
            ).one_or_none()
        if row is None:
            self._unknown.pop(key_id, None)
            self._unknown[key_id] = time.monotonic() + UNKNOWN_TTL_S
            if len(self._unknown) > UNKNOWN_MAX:
                self._unknown.popitem(last=False)
            raise NotAuthenticated("unknown or revoked API key")
        entry = (time.monotonic() + self.ttl_s, row[0], Caller(institution_id=row[1], kind=row[2]))
        self._cache[key_id] = entry
        return entry
