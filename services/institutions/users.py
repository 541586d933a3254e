"""Institution users: the people at a bank who answer instructions in the console. Each signs in with
their own password (scrypt-hashed) and gets a session token `sls_<id>.<secret>` that expires and ends
at sign-out; the token is mapped to the same institution-scoped rights as the institution's API key."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.institutions.credentials import ADMINISTRATOR, Caller, sha256
from services.institutions.models import Institution, InstitutionSession, InstitutionUser
from services.kit.audit import service as audit
from services.kit.errors import Conflict, InvalidInput, NotAuthenticated, TooManyRequests, Unavailable

log = logging.getLogger(__name__)

PREFIX = "sls_"
ACTOR_MAX = 120  # the audit trail's actor column
# scrypt at 2**14 × 8: ~16 MB and some tens of ms per check, the cost the standard library recommends.
N, R, P = 2**14, 8, 1
# Spent on unknown users too, so a failed sign-in takes as long whether or not the name exists.
WRONG = "wrong institution, user name or password"
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
    await _record(session, "institution_user.added", institution_id, username)  # never the password
    return password


async def set_password(session: AsyncSession, *, institution_id: str, username: str, password: str) -> None:
    """Set a user's password (the institution's administrator, through the CLI) and end the user's open
    sessions: a password is reset because the old one may be known, and so may its sessions be."""
    if len(password) < 10:
        raise InvalidInput("a password has at least 10 characters")
    user_id = await _user_id(session, institution_id=institution_id, username=username)
    await session.execute(
        update(InstitutionUser)
        .where(InstitutionUser.id == user_id)
        .values(password_hash=hash_password(password))
    )
    ended = await _end_sessions(session, user_id)
    await _record(session, "institution_user.password_set", institution_id, username, ended)


async def disable_user(session: AsyncSession, *, institution_id: str, username: str) -> None:
    """Stop a user signing in and end their open sessions at once (a person who left, a leaked password)."""
    user_id = await _user_id(session, institution_id=institution_id, username=username)
    await session.execute(
        update(InstitutionUser)
        .where(InstitutionUser.id == user_id, InstitutionUser.disabled_at.is_(None))
        .values(disabled_at=datetime.now(UTC))
    )
    ended = await _end_sessions(session, user_id)
    await _record(session, "institution_user.disabled", institution_id, username, ended)


async def _user_id(session: AsyncSession, *, institution_id: str, username: str) -> int:
    found = await session.scalar(
        select(InstitutionUser.id).where(
            InstitutionUser.institution_id == institution_id, InstitutionUser.username == username
        )
    )
    if found is None:
        raise InvalidInput(f"no user {username} of {institution_id}")
    return found


async def _end_sessions(session: AsyncSession, user_id: int) -> int:
    ended = await session.execute(
        update(InstitutionSession)
        .where(InstitutionSession.user_id == user_id, InstitutionSession.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC))
    )
    return ended.rowcount  # type: ignore[attr-defined,no-any-return]


async def _record(
    session: AsyncSession, action: str, institution_id: str, username: str, ended: int | None = None
) -> None:
    """Audit and log an action on a user (`ended`: the open sessions it ended, for those that end them)."""
    name = f"{institution_id}/{username}"
    after = None if ended is None else {"sessions_ended": ended}
    await audit.record(
        session,
        actor=ADMINISTRATOR,
        action=action,
        entity_type="institution_user",
        entity_id=name,
        after=after,
    )
    log.info(action, extra={"fields": {"user": name, **(after or {})}})


@dataclass(frozen=True)
class Account:
    """What a sign-in checks a password against, read before the check so that no database connection
    waits on the hash."""

    user_id: int
    password_hash: str


async def account(session: AsyncSession, *, institution_id: str, username: str) -> Account | None:
    row = (
        await session.execute(
            select(InstitutionUser.id, InstitutionUser.password_hash).where(
                InstitutionUser.institution_id == institution_id,
                InstitutionUser.username == username,
                InstitutionUser.disabled_at.is_(None),
            )
        )
    ).one_or_none()
    return None if row is None else Account(user_id=row[0], password_hash=row[1])


class PasswordChecks:
    """Admits at most `limit` sign-ins at once (each reads the account, then holds a thread, ~16 MB and
    some tens of ms of CPU for its scrypt check), and `PER_ADDRESS` of them from one client address, so one
    client cannot hold them all; one more is refused at once (503 past the limit, 429 past an address's
    share) rather than queued without bound, before it takes a database connection."""

    PER_ADDRESS = 2

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running: Counter[str] = Counter()

    @contextlib.contextmanager
    def admitted(self, address: str) -> Iterator[None]:
        if self.running.total() >= self.limit:
            raise Unavailable("too many sign-ins at once; retry in a moment")
        if self.running[address] >= self.PER_ADDRESS:
            raise TooManyRequests("too many sign-ins at once from this address", retry_after_s=1)
        self.running[address] += 1
        try:
            yield
        finally:
            self.running[address] -= 1
            if not self.running[address]:
                del self.running[address]


async def checked(password: str, found: Account | None) -> Account | None:
    """`found` when it exists and `password` is its password, else None; as slow either way."""
    ok = await asyncio.to_thread(check_password, password, found.password_hash if found else _DUMMY)
    return found if ok else None


async def open_session(session: AsyncSession, *, checked: Account, ttl_s: float) -> tuple[str, datetime]:
    """A new session token for an account whose password was just checked, and its end; refused if the
    user was disabled or given another password meanwhile."""
    still = await session.scalar(
        select(InstitutionUser.id)
        .where(
            InstitutionUser.id == checked.user_id,
            InstitutionUser.password_hash == checked.password_hash,
            InstitutionUser.disabled_at.is_(None),
        )
        .with_for_update()
    )
    if still is None:
        raise NotAuthenticated(WRONG)
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    ends = datetime.now(UTC) + timedelta(seconds=ttl_s)
    session.add(
        InstitutionSession(
            token_id=token_id, user_id=checked.user_id, secret_sha256=sha256(secret), expires_at=ends
        )
    )
    await session.flush()
    return f"{PREFIX}{token_id}.{secret}", ends


def _parse(raw: str) -> tuple[str, str]:
    token_id, _, secret = raw.removeprefix(PREFIX).partition(".")
    if not raw.startswith(PREFIX) or not token_id or not secret:
        raise NotAuthenticated("malformed session token")
    return token_id, secret


async def sign_out(session: AsyncSession, *, raw: str) -> None:
    """End the session `raw` names, if `raw` carries its secret (an ended one is left as it is)."""
    token_id, secret = _parse(raw)
    digest = await session.scalar(
        select(InstitutionSession.secret_sha256).where(InstitutionSession.token_id == token_id)
    )
    if digest is None or not hmac.compare_digest(digest, sha256(secret)):
        raise NotAuthenticated("unknown session token")
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
