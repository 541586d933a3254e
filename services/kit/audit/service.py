"""Recording actions in the hash-chained audit log, and verifying the chain.

An action's entries are queued on its session and written at the end of its unit of work (`seal`, a
before-commit hook of `services.kit.db.unit_of_work`) to `audit_pending`; the database links them into the
chain as the transaction commits (a deferred trigger, migration 0024_audit_chained_at_commit), under the
chain's lock, taken and released within the commit: appends still take turns, but none waits on another's
client. A session that would commit with unsealed entries refuses to (nothing is silently left out).

Each row's hash is SHA-256 over the canonical JSON of its content and the previous row's hash. A
changed row no longer matches its hash; a deleted or re-ordered row breaks the next row's link.
A verification records where it ended (`audit_checkpoints`): the rows after it are verified from
there, and the row it ended at must still be there with its hash: the newest rows deleted once a
verification has passed them are found too.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson
from sqlalchemy import event, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services.kit.audit import repository
from services.kit.audit.models import AuditCheckpoint, AuditEntry, PendingAuditEntry
from services.kit.auth import Officer
from services.kit.db import before_commit

GENESIS = "0" * 64
PENDING = "audit_pending"


class Institution(Protocol):
    """An institution acting through its API key (`services.institutions.credentials.Caller`)."""

    @property
    def institution_id(self) -> str: ...


@dataclass(frozen=True)
class Actor:
    subject: str
    role: str
    unit: str

    @classmethod
    def of(cls, who: Officer | Institution) -> Actor:
        if isinstance(who, Officer):
            return cls(who.subject, who.role, who.unit)
        return cls.institution(who.institution_id)

    @classmethod
    def institution(cls, institution_id: str) -> Actor:
        return cls(institution_id, "institution", institution_id)


SYSTEM = Actor("stopline", "system", "stopline")


def plain(value: Any) -> Any:
    """JSON-safe snapshot value: decimals, times and ids as strings, so they hash the same after a
    round trip through JSONB (which would turn numbers into floats of its own choosing)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


def _content(entry: AuditEntry | PendingAuditEntry, prev_hash: str) -> bytes:
    """The canonical JSON an entry's hash is taken over: its content and the previous entry's hash."""
    content = {
        "at": entry.at.astimezone(UTC).isoformat(),
        "actor": entry.actor,
        "actor_role": entry.actor_role,
        "actor_unit": entry.actor_unit,
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "case_id": str(entry.case_id) if entry.case_id else None,
        "legal_basis": entry.legal_basis,
        "before": entry.before,
        "after": entry.after,
        "prev_hash": prev_hash,
    }
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(_content(entry, entry.prev_hash)).hexdigest()


def chain_prefix(entry: PendingAuditEntry) -> str:
    """The entry's canonical JSON up to the previous entry's hash, which the database appends, with `"}`,
    before hashing (`prev_hash` sorts after every other key, so it comes last)."""
    whole = _content(entry, "")
    if not whole.endswith(b'"prev_hash":""}'):
        raise RuntimeError("the audit entry's canonical JSON does not end with its previous hash")
    return whole[: -len(b'"}')].decode()


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str | uuid.UUID,
    case_id: uuid.UUID | None = None,
    legal_basis: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Queue one action for the chain; it is written with the caller's transaction (see `seal`)."""
    entry = PendingAuditEntry(
        at=datetime.now(UTC),
        actor=actor.subject,
        actor_role=actor.role,
        actor_unit=actor.unit,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        case_id=case_id,
        legal_basis=legal_basis,
        before=plain(before) if before is not None else None,
        after=plain(after) if after is not None else None,
    )
    pending: list[PendingAuditEntry] = session.info.setdefault(PENDING, [])
    if not pending:
        before_commit(session, seal)
        event.listen(session.sync_session, "before_commit", _refuse_unsealed, once=True)
    pending.append(entry)


def _refuse_unsealed(session: Session) -> None:
    if session.info.get(PENDING):
        raise RuntimeError("audit entries were not sealed before commit: use services.kit.db.unit_of_work")


async def seal(session: AsyncSession) -> None:
    """Write the queued entries, in order, for the database to chain as the caller commits next."""
    pending: list[PendingAuditEntry] = session.info.pop(PENDING, [])
    if not pending:
        return
    for entry in pending:
        entry.canonical = chain_prefix(entry)
    await repository.queue_all(session, pending)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int  # rows verified to hold, from the chain's first through `through_id`
    head_hash: str
    first_bad_id: int | None = None
    reason: str | None = None
    through_id: int = 0  # the last row verified to hold (0: none)

    @classmethod
    def of(cls, checkpoint: AuditCheckpoint) -> Verdict:
        c = checkpoint
        return cls(c.ok, c.checked, c.head_hash, c.first_bad_id, c.reason, c.through_id)


GONE = "the row an earlier verification ended at was changed or removed"


async def verify(
    session: AsyncSession, *, start: Verdict | None = None, anchor: Verdict | None = None
) -> Verdict:
    """Walk the chain from the first row, or from where `start` (a verdict that held) ended; name the first
    row whose content or link does not hold. The row `start` or `anchor` (an earlier verdict that held)
    ended at must still be there, unchanged: deleting the newest rows leaves a chain that links."""
    prev, checked, after = GENESIS, 0, 0
    if start is not None and start.through_id:
        row = await repository.entry(session, start.through_id)
        if row is None or row.hash != start.head_hash or entry_hash(row) != row.hash:
            return Verdict(False, 0, GENESIS, start.through_id, GONE)
        prev, checked, after = start.head_hash, start.checked, start.through_id
    met = anchor is None or anchor.through_id <= after
    async for row in repository.stream_all(session, after=after):
        if not met and anchor is not None and row.id >= anchor.through_id:
            if row.id != anchor.through_id or row.hash != anchor.head_hash:
                return Verdict(False, checked, prev, anchor.through_id, GONE, after)
            met = True
        if row.prev_hash != prev:
            reason = "link broken: a row before it was changed or removed"
            return Verdict(False, checked, prev, row.id, reason, after)
        if entry_hash(row) != row.hash:
            reason = "content does not match its hash: the row was changed"
            return Verdict(False, checked, prev, row.id, reason, after)
        prev, checked, after = row.hash, checked + 1, row.id
    if not met and anchor is not None:
        return Verdict(False, checked, prev, anchor.through_id, GONE, after)
    return Verdict(True, checked, prev, through_id=after)


async def verify_whole(session: AsyncSession) -> Verdict:
    """Walk the whole chain, through the row the newest check that held ended at: rows deleted at the
    chain's head are found."""
    held = await repository.last_checkpoint(session, ok=True)
    return await verify(session, anchor=Verdict.of(held) if held is not None else None)


def checkpoint(verdict: Verdict, *, whole: bool) -> AuditCheckpoint:
    return AuditCheckpoint(
        at=func.now(),  # the database's clock: every instance's checkpoints on one
        whole=whole,
        ok=verdict.ok,
        checked=verdict.checked,
        through_id=verdict.through_id,
        head_hash=verdict.head_hash,
        first_bad_id=verdict.first_bad_id,
        reason=verdict.reason,
    )


@dataclass(frozen=True)
class Current:
    verdict: Verdict
    whole_at: datetime | None  # when the whole chain was last walked (None: never, or walked now)


async def current(session: AsyncSession) -> Current:
    """The chain's verdict as of now, at the cost of the rows appended since the newest checkpoint: that
    checkpoint's, and the rows after it verified now. A row changed before the checkpoint is found by the
    next walk of the whole chain (`services.coordination.audit.check`), or by the command line's at once.
    With no checkpoint yet, the whole chain is walked."""
    last = await repository.last_checkpoint(session)
    if last is None:
        return Current(await verify(session), None)
    whole = await repository.last_checkpoint(session, whole=True)
    whole_at = whole.at if whole is not None else None
    if not last.ok:
        return Current(Verdict.of(last), whole_at)
    return Current(await verify(session, start=Verdict.of(last)), whole_at)
