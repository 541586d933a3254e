"""Officers' console sessions: the console opens one at sign-in and asks whether it is still live (taking a
yes for a few seconds); the officer's sign-out ends it, and so does an administrator, for every session of
an officer (`python -m services.coordination.officers revoke-sessions <subject>`). Each is checked against
the database, so an end holds on every console instance within those seconds. The officer's token is not
revoked: the APIs verify it by its signature alone, until its own expiry (docs/security.md)."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.officers.models import OfficerSession
from services.kit.audit import service as audit
from services.kit.auth import Officer
from services.kit.errors import InvalidInput, NotAuthenticated
from services.kit.purge import RetentionPurge

log = logging.getLogger(__name__)

# No console session lasts longer (the console's TTL is 8 hours by default): a record is gone a day after
# its start at the latest, whatever a console asks.
MAX_LIFE = timedelta(hours=24)
# The console dates a session's end by its own clock: one ahead of ours by a little asks for a day and a
# few seconds at the longest TTL. Taken here rather than by capping the console's TTL below a day, as the
# skew is between two clocks and the receiver is where both are known (as ingest takes events dated up to
# 5 minutes ahead); a record lives at most this much longer.
CLOCK_SKEW = timedelta(minutes=5)
ADMINISTRATOR = audit.Actor("officers-cli", "system", "stopline")  # who acts through the CLI
ENDED = "this console session has ended (signed out, revoked or expired)"


async def open_session(session: AsyncSession, *, officer: Officer, expires_at: datetime) -> str:
    now = datetime.now(UTC)
    if not now < expires_at <= now + MAX_LIFE + CLOCK_SKEW:
        raise InvalidInput(
            "a session ends in the future and within a day",
            details=[
                {"field": "body.expires_at", "reason": f"between now and {MAX_LIFE + CLOCK_SKEW} from now"}
            ],
        )
    session_id = secrets.token_hex(16)
    session.add(
        OfficerSession(id=session_id, subject=officer.subject, unit=officer.unit, expires_at=expires_at)
    )
    await session.flush()
    return session_id


def _open() -> ColumnElement[bool]:
    return and_(OfficerSession.ended_at.is_(None), OfficerSession.expires_at > datetime.now(UTC))


def _officers(officer: Officer, session_id: str) -> ColumnElement[bool]:
    """The session `session_id` if it is open and `officer`'s (another's is as unknown)."""
    return and_(OfficerSession.id == session_id, OfficerSession.subject == officer.subject, _open())


async def check(session: AsyncSession, *, officer: Officer, session_id: str) -> datetime:
    """The session's end, if it is the officer's and live; refused otherwise (a primary-key read)."""
    ends: datetime | None = await session.scalar(
        select(OfficerSession.expires_at).where(_officers(officer, session_id))
    )
    if ends is None:
        raise NotAuthenticated(ENDED)
    return ends


async def end(session: AsyncSession, *, officer: Officer, session_id: str) -> None:
    """Sign-out: the session ends at once (one already ended, or another officer's, is refused)."""
    ended = await session.execute(
        update(OfficerSession).where(_officers(officer, session_id)).values(ended_at=datetime.now(UTC))
    )
    if not ended.rowcount:  # type: ignore[attr-defined]
        raise NotAuthenticated(ENDED)


async def revoke(session: AsyncSession, *, subject: str) -> int:
    """End every open session of the officer `subject` (a lost laptop, an officer who left); audited and
    logged. How many were open. Sessions opened after it are not touched: to keep the officer out, take
    them off the identity provider too."""
    ended = await session.execute(
        update(OfficerSession)
        .where(OfficerSession.subject == subject, _open())
        .values(ended_at=datetime.now(UTC))
    )
    count: int = ended.rowcount  # type: ignore[attr-defined]
    after = {"sessions_ended": count}
    await audit.record(
        session,
        actor=ADMINISTRATOR,
        action="officer_sessions.revoked",
        entity_type="officer",
        entity_id=subject,
        after=after,
    )
    log.info("officer_sessions.revoked", extra={"fields": {"officer": subject, **after}})
    return count


class SessionPurge(RetentionPurge):
    """Sessions past their end are of no use (a missing one is refused as an ended one): removed, every
    hour, so the table holds a day of sign-ins at most."""

    name = "officer session purge"

    async def remove(self, session: AsyncSession, *, cutoff: datetime, limit: int) -> int:
        past = (
            select(OfficerSession.id)
            .where(OfficerSession.expires_at < cutoff)
            .limit(limit)
            .with_for_update(skip_locked=True)  # (another instance's batch is skipped, not waited for)
        )
        removed = await session.execute(
            delete(OfficerSession)
            .where(OfficerSession.id.in_(past))
            .execution_options(synchronize_session=False)
        )
        return int(removed.rowcount)  # type: ignore[attr-defined]
