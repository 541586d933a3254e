"""Blocklist rules: proposals and telecom reports, review by a second person, listing for a period,
expiry, appeal and removal, for fraud numbers and for mule accounts alike. Every change is recorded in
the hash-chained audit log."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.blocklist import changes, repository
from services.blocklist.models import Appeal, Entry, Renewal, Report
from services.coordination import public as coordination
from services.institutions.models import Institution
from services.kit.audit import service as audit
from services.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from streams.schemas.blocklist import AccountChange, BlocklistChange

# Who may hold a listed account: the institutions that keep accounts.
ACCOUNT_HOLDERS = ("bank", "payment")


async def propose(
    session: AsyncSession,
    *,
    number: str,
    category: str,
    reason: str,
    case_id: uuid.UUID | None,
    actor: audit.Actor,
    now: datetime,
) -> tuple[Entry, bool]:
    """An operator proposes a number from a confirmed case of their unit; a live entry for it is joined
    (True), not made again."""
    cited = await _own_confirmed_case(session, case_id, actor) if case_id is not None else None
    existing = await repository.live_for_number(session, number)
    if existing is not None:
        joined = await _joined(
            session, existing, actor=actor, reason=reason, case_id=case_id, cited=cited, now=now
        )
        return joined, True
    entry = await _proposal(
        session,
        actor,
        now,
        number=number,
        source="case" if case_id else "operator",
        category=category,
        reason=reason,
        case_id=case_id,
    )
    basis = cited or "operator proposal"
    await changes.record(session, entry, actor=actor, action="proposed", basis=basis, before=None)
    return entry, False


async def _joined(
    session: AsyncSession,
    entry: Entry,
    *,
    actor: audit.Actor,
    reason: str,
    case_id: uuid.UUID | None,
    cited: str | None,
    now: datetime,
) -> Entry:
    """A second proposal of a live entry joins it; who proposed it again, why and from which case (`cited`)
    is recorded, not dropped, and its proposer is one of the entry's: they may not review it."""
    await repository.add_proposer(session, entry.id, actor.subject, now)
    basis = f"{cited}: {reason}" if cited else reason
    await changes.record(
        session, entry, actor=actor, action="proposal_joined", basis=basis, before=None, case_id=case_id
    )
    return entry


async def _proposal(session: AsyncSession, actor: audit.Actor, now: datetime, **fields: Any) -> Entry:
    """A new entry awaiting review, proposed by `actor`: a number or an account, by `fields`."""
    entry = Entry(
        id=uuid.uuid4(), status="proposed", reports=0, proposed_by=actor.subject, proposed_at=now, **fields
    )
    await repository.add(session, entry)
    await repository.add_proposer(session, entry.id, actor.subject, now)
    return entry


async def _not_a_proposer(session: AsyncSession, entry: Entry, actor: audit.Actor, act: str) -> None:
    """Four eyes: whoever proposed the entry, first or by joining it, may not be the second person."""
    if await repository.is_proposer(session, entry.id, actor.subject):
        raise Forbidden(f"a proposer of the entry (its first or a joining one) may not {act}")


async def _cited(session: AsyncSession, case_id: uuid.UUID) -> str:
    """A case as the audit trail and the case's timeline cite it: by its number, as officers know it."""
    case = await coordination.case_summary(session, case_id)
    return f"case {case.case_number}" if case is not None else f"case {case_id}"


async def _own_confirmed_case(session: AsyncSession, case_id: uuid.UUID, actor: audit.Actor) -> str:
    """An officer may cite only a case of their unit closed as confirmed fraud (cited as `_cited` does).
    One answer whether the case is missing, another unit's or not confirmed: no probing of case ids."""
    case = await coordination.case_summary(session, case_id)
    if case is None or case.unit != actor.unit or case.outcome != "confirmed_fraud":
        raise InvalidInput(
            f"case {case_id} is not a case of your unit closed as confirmed_fraud",
            details=[{"field": "body.case_id", "reason": "not a confirmed case of your unit"}],
        )
    return f"case {case.case_number}"


async def propose_account(
    session: AsyncSession,
    *,
    institution: str,
    account: str,
    source: str,
    reason: str,
    case_id: uuid.UUID | None,
    actor: audit.Actor,
    now: datetime,
) -> tuple[Entry, bool]:
    """An account that received victims' money is proposed for the mule list: from coordination (a
    confirmed case, an executed freeze: `source` case or freeze) or a supervisor's listing (`operator`,
    citing a confirmed case of their unit, if any); a live entry for it is joined (True), not made
    again."""
    holder = await session.get(Institution, institution)
    if holder is None or holder.kind not in ACCOUNT_HOLDERS:
        raise InvalidInput(
            f"no bank or payment provider {institution}",
            details=[{"field": "body.institution", "reason": "not a bank or payment provider"}],
        )
    cited = None
    if case_id is not None:  # one lookup: checked where an officer cites it, else as coordination names it
        own = source == "operator"
        cited = await (_own_confirmed_case(session, case_id, actor) if own else _cited(session, case_id))
    existing = await repository.live_for_account(session, institution, account)
    if existing is not None:
        joined = await _joined(
            session, existing, actor=actor, reason=reason, case_id=case_id, cited=cited, now=now
        )
        return joined, True
    entry = await _proposal(
        session,
        actor,
        now,
        kind="account",
        institution=institution,
        account=account,
        source=source,
        category="mule",
        reason=reason,
        case_id=case_id,
    )
    basis = cited or "supervisor's listing"
    await changes.record(session, entry, actor=actor, action="proposed", basis=basis, before=None)
    return entry, False


async def report(
    session: AsyncSession,
    *,
    number: str,
    category: str,
    note: str,
    request_id: uuid.UUID | None,
    actor: audit.Actor,
    now: datetime,
) -> Report:
    """A telecom reports a number: it joins the live entry or becomes a new proposal. The report is
    returned, not the entry: what the police hold on a number is not the telecom's to see. A request
    whose `request_id` made a report already is answered with it."""
    if request_id is not None and (
        earlier := await repository.reported_for(session, actor.subject, request_id)
    ):
        row, reported = earlier
        differs = [
            name for name, same in (("number", reported == number), ("note", row.note == note)) if not same
        ]
        if differs:
            raise Conflict(
                f"request_id is the key of another report (of another {', '.join(differs)}); a corrected"
                " report takes a new request_id",
                details={"field": "body.request_id", "differs": differs},
            )
        return row
    entry = await repository.live_for_number(session, number)
    before = changes.snapshot(entry) if entry else None
    if entry is None:
        entry = await _proposal(
            session, actor, now, number=number, source="telecom_report", category=category, reason=note
        )
    entry.reports += 1
    row = Report(entry_id=entry.id, institution_id=actor.subject, note=note, at=now, request_id=request_id)
    await repository.add(session, row)
    await changes.record(
        session, entry, actor=actor, action="reported", basis=f"report by {actor.subject}", before=before
    )
    return row


async def review(
    session: AsyncSession,
    *,
    entry_id: uuid.UUID,
    approve: bool,
    note: str | None,
    actor: audit.Actor,
    ttl_s: float,
    now: datetime,
) -> Entry:
    """A second person decides: approved numbers are listed (and published) for `ttl_s`."""
    entry = await _get(session, entry_id)
    if entry.status != "proposed":
        raise Conflict(f"the entry is {entry.status}", details={"current_status": entry.status})
    await _not_a_proposer(session, entry, actor, "review it")
    before = changes.snapshot(entry)
    entry.reviewed_by, entry.reviewed_at, entry.review_note = actor.subject, now, note
    if approve:
        entry.status, entry.listed_at = "active", now
        entry.expires_at = now + timedelta(seconds=ttl_s)
        entry.version = await repository.next_version(session)
    else:
        entry.status = "rejected"
    await session.flush()
    action = "approved" if approve else "rejected"
    await changes.record(session, entry, actor=actor, action=action, basis=note or action, before=before)
    return entry


async def propose_renewal(
    session: AsyncSession, *, entry_id: uuid.UUID, reason: str, actor: audit.Actor, now: datetime
) -> Renewal:
    """An officer proposes to keep a listing that has not expired yet listed for a new period (the number
    or account is still in use); a second person reviews it, as the listing was."""
    entry = await _get(session, entry_id)  # locked: a second proposal waits and finds this one pending
    _renewable(entry, now)
    if await repository.pending_renewal(session, entry_id) is not None:
        raise Conflict("a renewal of this entry is pending: review it")
    renewal = Renewal(
        id=uuid.uuid4(), entry_id=entry_id, reason=reason, proposed_by=actor.subject, proposed_at=now
    )
    await repository.add(session, renewal)
    basis = f"renewal {renewal.id}: {reason}"
    await changes.record(session, entry, actor=actor, action="renewal_proposed", basis=basis, before=None)
    return renewal


async def review_renewal(
    session: AsyncSession,
    *,
    renewal_id: uuid.UUID,
    approve: bool,
    note: str | None,
    actor: audit.Actor,
    ttl_s: float,
    now: datetime,
) -> Renewal:
    """A second person decides; an approved renewal lists the entry for `ttl_s` from now (the period a
    listing has) and publishes its new expiry."""
    renewal = _pending(await repository.get_renewal(session, renewal_id), "renewal", renewal_id)
    if renewal.proposed_by == actor.subject:
        raise Forbidden("whoever proposed the renewal may not review it")
    entry = await _get(session, renewal.entry_id)
    if approve:
        _renewable(entry, now)
    before = changes.snapshot(entry)
    renewal.status = "approved" if approve else "rejected"
    renewal.reviewed_by, renewal.reviewed_at, renewal.review_note = actor.subject, now, note
    if approve:
        assert entry.expires_at is not None  # an active entry has one
        # Never shortened: with STOPLINE_BLOCKLIST_ENTRY_TTL_S lowered since, the listing keeps its expiry.
        entry.expires_at = max(entry.expires_at, now + timedelta(seconds=ttl_s))
        entry.renewed_at = now
        entry.version = await repository.next_version(session)
    await session.flush()
    action = "renewed" if approve else "renewal_rejected"
    await changes.record(
        session,
        entry,
        actor=actor,
        action=action,
        basis=f"renewal {renewal.id}: {note or action}",
        before=before,
    )
    return renewal


def _renewable(entry: Entry, now: datetime) -> None:
    """Only a listing still running is renewed; one that ended (or whose time is up, before the expiry job
    took it off) is proposed again."""
    state = (
        "expired"
        if entry.status == "active" and entry.expires_at and entry.expires_at <= now
        else entry.status
    )
    if state != "active":
        raise Conflict(
            f"only a listing that has not ended can be renewed; it is {state}: propose it again",
            details={"current_status": state},
        )


async def expire_due(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """Take entries past their time off the list (and the feed)."""
    due = await repository.due_to_expire(session, now=now, limit=limit)
    for entry in due:
        before = changes.snapshot(entry)
        entry.status, entry.ended_at, entry.end_reason = "expired", now, "listing period ended"
        entry.version = await repository.next_version(session)
        await session.flush()
        await changes.record(
            session, entry, actor=audit.SYSTEM, action="expired", basis="listing period ended", before=before
        )
    return len(due)


async def file_appeal(
    session: AsyncSession, *, entry_id: uuid.UUID, statement: str, actor: audit.Actor, now: datetime
) -> Appeal:
    entry = await _get(session, entry_id)
    if entry.status != "active":
        raise Conflict(f"only a listed number can be appealed; it is {entry.status}")
    if await repository.pending_appeal(session, entry_id) is not None:
        raise Conflict("an appeal on this entry is pending")
    appeal = Appeal(
        id=uuid.uuid4(), entry_id=entry_id, statement=statement, filed_by=actor.subject, filed_at=now
    )
    await repository.add(session, appeal)
    await changes.record(
        session, entry, actor=actor, action="appealed", basis=f"appeal {appeal.id}", before=None
    )
    return appeal


async def decide_appeal(
    session: AsyncSession, *, appeal_id: uuid.UUID, uphold: bool, note: str, actor: audit.Actor, now: datetime
) -> Appeal:
    """A supervisor who neither filed the appeal nor proposed the entry decides; an upheld appeal removes
    the number from the list at once."""
    appeal = _pending(await repository.get_appeal(session, appeal_id), "appeal", appeal_id)
    if appeal.filed_by == actor.subject:
        raise Forbidden("whoever filed the appeal may not decide it")
    entry = await _get(session, appeal.entry_id)
    await _not_a_proposer(session, entry, actor, "decide an appeal against it")
    appeal.status = "upheld" if uphold else "dismissed"
    appeal.decided_by, appeal.decided_at, appeal.decision_note = actor.subject, now, note
    before = changes.snapshot(entry)
    # Upheld on a number no longer listed (it expired while the appeal waited): nothing to remove, and the
    # log does not say something was.
    removed = uphold and entry.status == "active"
    if removed:
        entry.status, entry.ended_at, entry.end_reason = "removed", now, f"appeal upheld: {note}"
        entry.version = await repository.next_version(session)
    await session.flush()
    action = "removed" if removed else "appeal_upheld" if uphold else "appeal_dismissed"
    await changes.record(
        session, entry, actor=actor, action=action, basis=f"appeal {appeal.id}: {note}", before=before
    )
    return appeal


Asked = TypeVar("Asked", Appeal, Renewal)


def _pending(row: Asked | None, what: str, ident: uuid.UUID) -> Asked:
    """An appeal or a renewal still waiting for its decision."""
    if row is None:
        raise NotFound(f"no {what} {ident}")
    if row.status != "pending":
        raise Conflict(f"the {what} is {row.status}", details={"current_status": row.status})
    return row


async def _get(session: AsyncSession, entry_id: uuid.UUID) -> Entry:
    entry = await repository.get(session, entry_id, for_update=True)
    if entry is None:
        raise NotFound(f"no blocklist entry {entry_id}")
    return entry


def to_change(entry: Entry) -> BlocklistChange | AccountChange:
    """The published state of an entry, as its feed and sync carry it."""
    assert entry.version is not None and entry.status in ("active", "expired", "removed")
    common: dict[str, Any] = {
        "entry_id": entry.id,
        "status": entry.status,
        "version": entry.version,
        "category": entry.category,
        "listed_at": entry.listed_at,
        "expires_at": entry.expires_at,
        "changed_at": entry.ended_at or entry.renewed_at or entry.listed_at or entry.proposed_at,
    }
    if entry.kind == "account":
        return AccountChange(institution=entry.institution, account=entry.account, **common)
    return BlocklistChange(number=entry.number, **common)


async def sync(
    session: AsyncSession, *, kind: str, since: int, limit: int
) -> tuple[int, bool, list[BlocklistChange | AccountChange]]:
    """Changes of one kind (numbers or accounts) after `since` (from 0: the active list), the version to
    ask from next, and if more wait. A `since` above the current version is refused."""
    current = await repository.current_version(session, kind=kind)
    if since > current:
        # Never issued: the database was restored to an earlier state (its versions are taken again), or
        # the cursor came from elsewhere. Answered "no changes", the reader would miss every change below
        # its cursor for good; from 0 it gets the whole list again.
        raise Conflict(
            f"since={since} is above the current version {current}: this server never issued it; "
            "sync again from since=0 and replace your list with what it gives",
            details={"since": since, "current_version": current},
        )
    # From 0 a reader starts afresh and needs only what is listed; after that, every change.
    rows = await repository.changes_after(
        session, since=since, limit=limit, active_only=since == 0, kind=kind
    )
    last = max((r.version or 0 for r in rows), default=since)
    more = len(rows) == limit
    # A change committed between the two reads may be in `rows` and above `current`: take the larger.
    version = last if more else max(current, last)
    return version, more, [to_change(r) for r in rows]
