"""Who is signed in: a session sealed into an HttpOnly cookie (AES-256-GCM), so any console instance
can read it and nobody can read or forge it. It carries the person's own credential for the APIs, a
CSRF token, and its two clocks: the absolute end (sign-in + TTL, or the credential's own expiry if
sooner) and the idle end (last use + idle TTL). Whether it was ended before (a sign-out, an
administrator) is known at the coordination API, where the session is kept (`web.signed_in`): the cookie
alone cannot say, as a copy of it does not see the sign-out."""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import asdict, dataclass, replace
from typing import Literal

import orjson
from cryptography.exceptions import InvalidTag

from services.kit.sealing import Sealer

COOKIE = "stopline_session"
Kind = Literal["officer", "institution"]


@dataclass(frozen=True)
class User:
    kind: Kind
    subject: str  # the officer's `sub`, or the institution user's name
    role: str  # operator, supervisor, auditor; "institution" for institution staff
    unit: str  # the officer's police unit, or the institution id
    token: str  # the bearer credential the APIs take: the officer's JWT, or the institution session
    csrf: str
    ends_at: float  # epoch seconds
    seen_at: float
    # An officer's session at the coordination API ("" for an institution user, whose session is `token`).
    # A cookie sealed before sessions were kept there has none: an institution user's stays good, an
    # officer's goes to the sign-in page (`web.still_open`).
    session_id: str = ""

    @property
    def officer(self) -> bool:
        return self.kind == "officer"

    def may(self, *roles: str) -> bool:
        return self.role in roles


class Sessions:
    def __init__(self, key_b64: str, *, ttl_s: float, idle_s: float) -> None:
        self.sealer = Sealer(key_b64)
        self.ttl_s = ttl_s
        self.idle_s = idle_s

    def start(
        self, *, kind: Kind, subject: str, role: str, unit: str, token: str, credential_ends_at: float
    ) -> User:
        """A new session; an officer's is of use once it is opened at the API too (`signin`)."""
        now = time.time()
        return User(
            kind=kind,
            subject=subject,
            role=role,
            unit=unit,
            token=token,
            csrf=secrets.token_urlsafe(24),
            ends_at=min(now + self.ttl_s, credential_ends_at),
            seen_at=now,
        )

    def seal(self, user: User) -> str:
        sealed = self.sealer.seal(orjson.dumps(asdict(user)), context=COOKIE.encode())
        return base64.urlsafe_b64encode(sealed).decode()

    def open(self, cookie: str | None) -> User | None:
        """The session of this cookie, or None: missing, forged, ended or idle too long."""
        if not cookie or len(cookie) > 8192:
            return None
        try:
            plain = self.sealer.open(base64.urlsafe_b64decode(cookie.encode()), context=COOKIE.encode())
            user = User(**orjson.loads(plain))
        except (InvalidTag, binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
            return None
        now = time.time()
        if now >= user.ends_at or self.idle(user, now):
            return None
        return user

    def idle(self, user: User, now: float) -> bool:
        """Unused for the idle limit, as this copy of the session knows it."""
        return now - user.seen_at >= self.idle_s

    def touched(self, user: User) -> User | None:
        """The session with its idle clock restarted, when it is worth a new cookie (once a minute)."""
        now = time.time()
        return replace(user, seen_at=now) if now - user.seen_at > 60 else None
