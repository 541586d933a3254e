"""Institution users: the people at a bank who answer instructions in the console. Each signs in with
their own password (scrypt-hashed) and gets a session token `sls_<id>.<secret>` that expires and ends
at sign-out; the token is mapped to the same institution-scoped rights as the institution's API key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.institutions.credentials import Caller, sha256
from services.institutions.models import Institution, InstitutionSession, InstitutionUser
from services.kit.errors import Conflict, InvalidInput, NotAuthenticated

PREFIX = "sls_"
ACTOR_MAX = 120  # the audit trail's actor column
# scrypt at 2**14 × 8: ~16 MB and some tens of ms per check, the cost the standard library recommends.
N, R, P = 2**14, 8, 1
# Spent on unknown users too, so a failed sign-in takes as long whether or not the name exists.
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 86 + "=="


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=64)
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


async def add_user(session: AsyncSession, *, institution_id: str, username: str) -> str:
    """Create a user and return a generated password (shown once; only its hash is stored)."""
    if await session.get(Institution, institution_id) is None:
        raise InvalidInput(f"no institution {institution_id}")
    if (
        len(f"{institution_id}/{username}") > ACTOR_MAX
    ):  # the user's name in the audit trail (Credentials.name)
        raise InvalidInput(
            "username too long",
            details=[
                {"field": "username", "reason": f"with the institution id, at most {ACTOR_MAX} characters"}
            ],
        )
    found = await session.execute(
        select(InstitutionUser.id).where(
            InstitutionUser.institution_id == institution_id, InstitutionUser.username == username
        )
    )
    if found.first() is not None:
        raise Conflict(f"user {username} of {institution_id} exists")
    password = secrets.token_urlsafe(12)
    session.add(
        InstitutionUser(
            institution_id=institution_id, username=username, password_hash=hash_password(password)
        )
    )
    await session.flush()
    return password


async def set_password(session: AsyncSession, *, institution_id: str, username: str, password: str) -> None:
    """Set a user's password (the institution's administrator, through the CLI)."""
    if len(password) < 10:
        raise InvalidInput("a password has at least 10 characters")
    result = await session.execute(
        update(InstitutionUser)
        .where(InstitutionUser.institution_id == institution_id, InstitutionUser.username == username)
        .values(password_hash=hash_password(password))
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise InvalidInput(f"no user {username} of {institution_id}")


async def sign_in(
    session: AsyncSession, *, institution_id: str, username: str, password: str, ttl_s: float
) -> tuple[str, datetime]:
    """A new session token and its end; a wrong institution, name or password is refused alike."""
    row = (
        await session.execute(
            select(InstitutionUser).where(
                InstitutionUser.institution_id == institution_id,
                InstitutionUser.username == username,
                InstitutionUser.disabled_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    ok = await asyncio.to_thread(check_password, password, row.password_hash if row else _DUMMY)
    if row is None or not ok:
        raise NotAuthenticated("wrong institution, user name or password")
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    ends = datetime.now(UTC) + timedelta(seconds=ttl_s)
    session.add(
        InstitutionSession(token_id=token_id, user_id=row.id, secret_sha256=sha256(secret), expires_at=ends)
    )
    await session.flush()
    return f"{PREFIX}{token_id}.{secret}", ends


def _parse(raw: str) -> tuple[str, str]:
    token_id, _, secret = raw.removeprefix(PREFIX).partition(".")
    if not raw.startswith(PREFIX) or not token_id or not secret:
        raise NotAuthenticated("malformed session token")
    return token_id, secret


async def sign_out(session: AsyncSession, *, raw: str) -> None:
    token_id, _ = _parse(raw)
    await session.execute(
        update(InstitutionSession)
        .where(InstitutionSession.token_id == token_id, InstitutionSession.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC))
    )


class SessionVerifier:
    """Checks session tokens against the database on every call, so sign-out and expiry take effect at
    once (a primary-key read)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def verify(self, raw: str) -> Caller:
        token_id, secret = _parse(raw)
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(
                        InstitutionSession.secret_sha256,
                        InstitutionSession.expires_at,
                        InstitutionUser.username,
                        Institution.id,
                        Institution.kind,
                    )
                    .join(InstitutionUser, InstitutionUser.id == InstitutionSession.user_id)
                    .join(Institution, Institution.id == InstitutionUser.institution_id)
                    .where(
                        InstitutionSession.token_id == token_id,
                        InstitutionSession.ended_at.is_(None),
                        InstitutionUser.disabled_at.is_(None),
                    )
                )
            ).one_or_none()
        if row is None or not hmac.compare_digest(row[0], sha256(secret)) or row[1] <= datetime.now(UTC):
            raise NotAuthenticated("unknown, ended or expired session")
        return Caller(institution_id=row[3], kind=row[4], user=row[2])
