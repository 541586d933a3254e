"""Instruction rules: issuing, approval by a second officer, the policy periods, and every status change
(through `transition`, which enforces the state machine of `states.py`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination import metrics
from services.coordination.cases import repository as cases
from services.coordination.cases.models import Case
from services.coordination.deadlines import escalation
from services.coordination.delivery import service as delivery
from services.coordination.instructions import repository, states
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.schemas import InstructionCreate
from services.coordination.instructions.states import Status
from services.coordination.settings import CoordinationSettings
from services.institutions.models import Institution
from services.kit.audit import service as audit
from services.kit.auth import Officer
from services.kit.db import after_commit
from services.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from streams.schemas.event_time import ahead
from streams.schemas.instructions import Beneficiary, InstructionMessage, Kind, LegalBasis, Notice


@dataclass(frozen=True)
class Context:
    """What every decision needs besides the session: the policy and where messages go."""

    policy: CoordinationSettings
    topic_prefix: str
    # The clocks' skew allowed to a date an institution states (STOPLINE_EVENT_MAX_AHEAD_S, as for events).
    max_ahead_s: float


def snapshot(row: Instruction) -> dict[str, Any]:
    """The fields an audit entry records before and after a change."""
    return {
        "status": row.status,
        "amount": row.amount,
        "held_amount": row.held_amount,
        "expires_at": row.expires_at,
        "renewals": row.renewals,
        "approved_by": row.approved_by,
        "overdue": row.overdue,
        "decision_note": row.decision_note,
    }


def legal_basis(row: Instruction) -> str:
    return f"case {row.case_number}" + (f"; document {row.document_number}" if row.document_number else "")


async def record(
    session: AsyncSession,
    row: Instruction,
    *,
    actor: audit.Actor,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    basis: Instruction | None = None,
) -> None:
    """An audit entry about the instruction `row`, on the legal basis of `basis` (by default its own)."""
    await audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="instruction",
        entity_id=row.id,
        case_id=row.case_id,
        legal_basis=legal_basis(basis or row),
        before=before,
        after=after,
    )


async def transition(
    session: AsyncSession,
    row: Instruction,
    target: str,
    *,
    actor: audit.Actor,
    action: str,
    now: datetime,
    flush: bool = True,
    **changes: Any,
) -> None:
    """The one place an instruction changes status: checked against the state machine, audited. Written
    at once, as what follows may read it or a unique index may refuse it; `flush=False` leaves it to the
    caller's one write of many rows (the relay's batch: one round trip, not one per instruction)."""
    states.check(kind=row.kind, current=row.status, target=target)
    before = snapshot(row)
    row.status = target
    row.updated_at = now
    for name, value in changes.items():
        setattr(row, name, value)
    if flush:
        await session.flush()
    after_commit(session, metrics.INSTRUCTION_TRANSITIONS.labels(row.kind, target).inc)
    await record(session, row, actor=actor, action=action, before=before, after=snapshot(row))


def to_message(row: Instruction, *, notice: Notice | None = None) -> InstructionMessage:
    if row.issued_at is None or row.ack_due_at is None or row.exec_due_at is None:
        raise RuntimeError(f"instruction {row.id} has not been issued")
    beneficiary = (
        Beneficiary(institution=row.beneficiary_institution, account=row.beneficiary_account)
        if row.beneficiary_institution and row.beneficiary_account
        else None
    )
    return InstructionMessage(
        message_id=str(row.id) if notice is None else f"{row.id}:{notice}",
        type="instruction" if notice is None else "notice",
        notice=notice,
        instruction_id=row.id,
        kind=row.kind,
        institution_id=row.institution_id,
        account=row.account,
        amount=row.amount,
        since=row.since,
        parent_instruction_id=row.parent_id,
        beneficiary=beneficiary,
        legal_basis=LegalBasis(case_number=row.case_number, document_number=row.document_number),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        ack_due_at=row.ack_due_at,
        exec_due_at=row.exec_due_at,
    )


def _period(kind: str, policy: CoordinationSettings) -> timedelta:
    return timedelta(
        seconds=policy.stop_payment_period_s if kind == Kind.STOP_PAYMENT else policy.freeze_period_s
    )


def _issue_fields(row: Instruction, ctx: Context, now: datetime) -> dict[str, Any]:
    """Issuing starts the deadlines and, for a hold, its period."""
    changes: dict[str, Any] = {
        "issued_at": now,
        "ack_due_at": now + timedelta(seconds=ctx.policy.ack_deadline_s[row.kind]),
        "exec_due_at": now + timedelta(seconds=ctx.policy.exec_deadline_s[row.kind]),
    }
    if row.kind in states.HOLD_KINDS:
        changes["expires_at"] = now + _period(row.kind, ctx.policy)
    return changes


async def _queue(session: AsyncSession, row: Instruction, ctx: Context) -> None:
    """The message goes into the outbox in this transaction: sent if and only if the issue commits."""
    await delivery.enqueue_instruction(session, message=to_message(row), topic_prefix=ctx.topic_prefix)
    after_commit(session, metrics.INSTRUCTIONS_ISSUED.labels(row.kind).inc)


async def issue(
    session: AsyncSession, *, case: Case, officer: Officer, spec: InstructionCreate, ctx: Context
) -> Instruction:
    """Create an instruction: issued at once, or awaiting a supervisor's approval (freeze, extend,
    release). A request whose `request_id` issued one already is answered with it."""
    if spec.request_id is not None and (earlier := await repository.issued_for(session, spec.request_id)):
        if differs := _differences(earlier, case=case, officer=officer, spec=spec):
            raise Conflict(
                "request_id is the key of another request (it asked for another "
                + ", ".join(differs)
                + "); a corrected request takes a new request_id",
                details={"field": "body.request_id", "differs": differs},
            )
        return earlier
    now = datetime.now(UTC)
    row = Instruction(
        id=uuid.uuid4(),
        case_id=case.id,
        kind=spec.kind,
        case_number=case.case_number,
        document_number=spec.document_number,
        reason=spec.reason,
        issued_by=officer.subject,
        issued_by_unit=officer.unit,
        amount=spec.amount,
        renewals=0,
        created_at=now,
        updated_at=now,
        request_id=spec.request_id,
    )
    await _shape(session, row, case=case, spec=spec, ctx=ctx)
    row.status = Status.AWAITING_APPROVAL if spec.kind in states.NEEDS_APPROVAL else Status.ISSUED
    if row.status == Status.ISSUED:
        for name, value in _issue_fields(row, ctx, now).items():
            setattr(row, name, value)
    await repository.add(session, row)
    await record(
        session,
        row,
        actor=audit.Actor.of(officer),
        action="instruction.issued" if row.status == Status.ISSUED else "instruction.requested",
        after=snapshot(row) | {"kind": row.kind, "institution": row.institution_id},
    )
    if row.status == Status.ISSUED:
        await _queue(session, row, ctx)
    return row


def _differences(earlier: Instruction, *, case: Case, officer: Officer, spec: InstructionCreate) -> list[str]:
    """What a request with the key of `earlier` asks for otherwise than it did (empty: the same request).
    A key sent again with an account, a beneficiary or a date corrected (after a timeout) must not be
    answered with the instruction the first issued."""
    given: dict[str, Any] = {
        "case_id": case.id,
        "kind": spec.kind,
        "issued_by": officer.subject,
        "parent_id": spec.parent_id,
        "institution_id": spec.institution_id,
        "account": spec.account,
        "amount": spec.amount,
        "document_number": spec.document_number,
        "reason": spec.reason,
    }
    if spec.kind == Kind.QUERY:
        given["since"] = spec.since or case.lost_at  # as `_shape` fills it in
    if spec.kind == Kind.RETURN_FUNDS:
        to = spec.beneficiary
        given["beneficiary_institution"] = to.institution if to else case.victim_institution
        given["beneficiary_account"] = to.account if to else case.victim_account
    optional = ("institution_id", "account", "amount")  # not given: the parent's (a follow-up), or none
    names = {"case_id": "case", "issued_by": "officer", "parent_id": "parent_id"}
    return [
        names.get(name, name)
        for name, value in given.items()
        if not ((name in optional and value is None) or getattr(earlier, name) == value)
    ]


async def _shape(
    session: AsyncSession, row: Instruction, *, case: Case, spec: InstructionCreate, ctx: Context
) -> None:
    """Check the request against the kind's rules and fill in what follows from them."""
    if spec.kind in (Kind.QUERY, Kind.STOP_PAYMENT, Kind.FREEZE):
        if not spec.institution_id or not spec.account:
            raise InvalidInput(
                f"a {spec.kind} names `institution_id` and `account`",
                field="body.account" if spec.institution_id else "body.institution_id",
            )
        if spec.parent_id is not None:
            raise InvalidInput(f"a {spec.kind} has no `parent_id`", field="body.parent_id")
        await _institution(session, spec.institution_id)
        row.institution_id, row.account = spec.institution_id, spec.account
    if spec.kind == Kind.QUERY:
        if spec.amount is not None:
            raise InvalidInput("a query has no amount", field="body.amount")
        # Transfers since a time to come are none yet: a wrong date, not a query to send.
        if spec.since is not None and (
            late := ahead(spec.since, max_ahead_s=ctx.max_ahead_s, now=row.created_at)
        ):
            raise InvalidInput(late, field="body.since")
        row.since = spec.since or case.lost_at
    elif spec.kind == Kind.STOP_PAYMENT and spec.amount is None:
        raise InvalidInput("a stop-payment names the amount to stop", field="body.amount")
    elif spec.kind == Kind.FREEZE and not spec.document_number:
        raise InvalidInput("a freeze needs the legal document number", field="body.document_number")
    elif spec.kind in (Kind.EXTEND, Kind.RELEASE, Kind.RETURN_FUNDS):
        await _shape_follow_up(session, row, case=case, spec=spec, ctx=ctx)


async def _shape_follow_up(
    session: AsyncSession, row: Instruction, *, case: Case, spec: InstructionCreate, ctx: Context
) -> None:
    if spec.parent_id is None:
        raise InvalidInput(
            f"a {spec.kind} names the instruction it acts on in `parent_id`", field="body.parent_id"
        )
    parent = await repository.get(session, spec.parent_id, for_update=True)
    if parent is None or parent.case_id != case.id:
        raise InvalidInput(f"no instruction {spec.parent_id} in this case", field="body.parent_id")
    if parent.kind not in states.HOLD_KINDS:
        raise InvalidInput(
            f"a {spec.kind} acts on a stop-payment or a freeze, not a {parent.kind}", field="body.parent_id"
        )
    if spec.institution_id not in (None, parent.institution_id) or spec.account not in (None, parent.account):
        raise InvalidInput(
            "institution and account are those of the parent instruction",
            field="body.institution_id"
            if spec.institution_id not in (None, parent.institution_id)
            else "body.account",
        )
    row.parent_id, row.institution_id, row.account = parent.id, parent.institution_id, parent.account
    if spec.kind in (Kind.EXTEND, Kind.RELEASE) and not spec.document_number:
        raise InvalidInput(f"a {spec.kind} needs the legal document number", field="body.document_number")
    if spec.kind == Kind.EXTEND:
        if spec.amount is not None:
            raise InvalidInput("an extension keeps the amount of the hold", field="body.amount")
        if parent.status not in states.PENDING_ANSWER + states.HOLDING:
            raise Conflict(f"the {parent.kind} is {parent.status}", details={"current_status": parent.status})
        limit = (
            ctx.policy.stop_payment_max_renewals
            if parent.kind == Kind.STOP_PAYMENT
            else ctx.policy.freeze_max_renewals
        )
        # Those not answered yet: one executed is counted in the parent's renewals already.
        pending = [
            c
            for c in await repository.children(session, parent.id, Kind.EXTEND)
            if c.status in (Status.AWAITING_APPROVAL, *states.PENDING_ANSWER)
        ]
        if limit >= 0 and parent.renewals + len(pending) >= limit:
            raise Conflict(
                f"a {parent.kind} may be renewed {limit} time(s); it has been",
                details={
                    "current_status": parent.status,
                    "renewals": parent.renewals,
                    "pending": len(pending),
                },
            )
    elif spec.kind == Kind.RELEASE:
        if parent.status not in states.HOLDING:
            raise Conflict(
                f"only a hold in force can be released; it is {parent.status}",
                details={"current_status": parent.status},
            )
        # (one executed in part left the rest in force: the rest is released by another)
        under_way = [
            c
            for c in await repository.children(session, parent.id, Kind.RELEASE)
            if c.status in (Status.AWAITING_APPROVAL, *states.PENDING_ANSWER)
        ]
        if under_way:
            raise Conflict(
                "a release of this hold is already under way",
                details={"current_status": parent.status, "release_id": str(under_way[0].id)},
            )
        # A release ends the hold as a whole (what it holds now); a smaller hold is a new freeze, not a
        # partial release. (The bank may release only part: the rest stays held, `answers._release`.)
        held = parent.held_amount or Decimal("0.00")
        if held <= 0:
            # Only a hold answered before holds of nothing were refused: it holds nothing to release
            # (a release without an amount would read "release everything"), and lapses by itself.
            raise Conflict(
                f"the {parent.kind} holds nothing to release; it lapses by itself",
                details={"current_status": parent.status, "held_amount": str(held)},
            )
        if spec.amount is not None and spec.amount != held:
            raise InvalidInput(f"a release releases the whole hold of {held}", field="body.amount")
        row.amount = held
    else:  # return_funds
        await _shape_return(session, row, parent, case=case, spec=spec)


# A return that did nothing, or is not under way (delivery given up): it returned nothing.
_RETURNED_NOTHING = frozenset(
    {Status.REJECTED, Status.ACCOUNT_NOT_FOUND, Status.FAILED, Status.DECLINED, Status.CANCELLED}
)


def returnable(children: Iterable[Instruction]) -> tuple[Decimal, Decimal]:
    """What a freeze's releases released, and what is left to return of it (冻结资金返还): the released
    amount as the bank stated it, less what its returns returned (as the bank stated) or are still to
    return (as instructed: two returns are never under way for the same money)."""
    released = returned = Decimal(0)
    for c in children:
        if c.kind == Kind.RELEASE:
            released += _done_amount(c)
        elif c.kind == Kind.RETURN_FUNDS:
            if c.status in states.HOLDING:
                returned += _done_amount(c)
            elif c.status not in _RETURNED_NOTHING:  # awaiting its answer
                returned += c.amount or Decimal(0)
    return released, released - returned


async def _shape_return(
    session: AsyncSession, row: Instruction, parent: Instruction, *, case: Case, spec: InstructionCreate
) -> None:
    """Frozen funds are returned once released, up to what is left (`returnable`)."""
    if parent.kind != Kind.FREEZE:
        raise InvalidInput(
            "funds are returned from a freeze once released; a stop-payment is frozen first (or released"
            " and the money left where it is)",
            details=[{"field": "body.parent_id", "reason": f"a {parent.kind}, not a freeze"}],
        )
    released, available = returnable(
        await repository.children(session, parent.id, Kind.RELEASE, Kind.RETURN_FUNDS)
    )
    if released <= 0:
        raise Conflict(
            f"funds are returned after release; the hold is {parent.status}",
            details={"current_status": parent.status},
        )
    row.amount = spec.amount or available
    if row.amount <= 0 or row.amount > available:
        raise InvalidInput(
            f"cannot return {row.amount}: {available} is left of the {released} released",
            details=[{"field": "body.amount", "reason": f"{available} is left to return"}],
        )
    beneficiary = spec.beneficiary or (
        Beneficiary(institution=case.victim_institution, account=case.victim_account)
        if case.victim_institution and case.victim_account
        else None
    )
    if beneficiary is None:
        raise InvalidInput(
            "a return names the victim's account (`beneficiary`), or the case must", field="body.beneficiary"
        )
    row.beneficiary_institution, row.beneficiary_account = beneficiary.institution, beneficiary.account


def _done_amount(row: Instruction) -> Decimal:
    """What a release or return did, as its institution stated it (executed: all of it, if it said no
    amount; a part: the part); nothing unless executed."""
    if row.status not in states.HOLDING:
        return Decimal(0)
    return row.held_amount if row.held_amount is not None else (row.amount or Decimal(0))


async def _institution(session: AsyncSession, institution_id: str) -> Institution:
    inst = await session.get(Institution, institution_id)
    if inst is None or inst.kind not in ("bank", "payment"):
        raise InvalidInput(f"no bank or payment provider {institution_id}", field="body.institution_id")
    return inst


async def _parent_still_holds(session: AsyncSession, row: Instruction) -> None:
    """An extension or release approved later than asked: the hold it acts on may have lapsed or been
    released meanwhile, and then there is nothing at the bank for it to act on."""
    if row.kind not in (Kind.EXTEND, Kind.RELEASE) or row.parent_id is None:
        return
    parent = await repository.get(session, row.parent_id, for_update=True)
    may = states.PENDING_ANSWER + states.HOLDING if row.kind == Kind.EXTEND else states.HOLDING
    if parent is None or parent.status not in may:
        status = parent.status if parent is not None else "gone"
        raise Conflict(f"the hold it acts on is {status}", details={"parent_status": status})


async def _owned(
    session: AsyncSession, instruction_id: uuid.UUID, officer: Officer, *, lock: bool = True
) -> Instruction:
    row = await repository.get(session, instruction_id, for_update=lock)
    if row is None or row.issued_by_unit != officer.unit:
        raise NotFound(f"no instruction {instruction_id}")
    return row


async def approve(
    session: AsyncSession,
    *,
    instruction_id: uuid.UUID,
    officer: Officer,
    ctx: Context,
    note: str | None = None,
) -> Instruction:
    """A supervisor other than the issuer approves; the instruction is issued in the same transaction."""
    # The case's lock before the instruction's (cases.repository). Share-locked: a close waits for this
    # approval, or this approval sees the case closed.
    seen = await _owned(session, instruction_id, officer, lock=False)
    case = await cases.get(session, seen.case_id, lock="share")
    row = await _owned(session, instruction_id, officer)
    if row.issued_by == officer.subject:
        raise Forbidden("the issuer cannot approve their own instruction")
    if case is None or case.status != "open":
        status = case.status if case is not None else "gone"
        raise Conflict(f"the instruction's case is {status}", details={"case_status": status})
    await _parent_still_holds(session, row)
    now = datetime.now(UTC)
    changes = _issue_fields(row, ctx, now) | {"approved_by": officer.subject, "approved_at": now}
    await transition(
        session,
        row,
        Status.ISSUED,
        actor=audit.Actor.of(officer),
        action="instruction.approved",
        now=now,
        decision_note=note,
        **changes,
    )
    await _queue(session, row, ctx)
    return row


async def decline(
    session: AsyncSession, *, instruction_id: uuid.UUID, officer: Officer, note: str | None
) -> Instruction:
    """A supervisor refuses the request, stating why (`note`): kept on it and in the audit log, for the
    issuer to read and ask again with what was missing."""
    row = await _owned(session, instruction_id, officer)
    note = note.strip() if note else None
    if not note:
        problem = "a decline states why"
        raise InvalidInput(problem, field="body.note")
    now = datetime.now(UTC)
    await transition(
        session,
        row,
        Status.DECLINED,
        actor=audit.Actor.of(officer),
        action="instruction.declined",
        now=now,
        decision_note=note,
    )
    return row


async def cancel(
    session: AsyncSession, *, instruction_id: uuid.UUID, officer: Officer, note: str | None, ctx: Context
) -> Instruction:
    """The issuer (or a supervisor) withdraws a request that has not been approved yet, or an instruction
    whose institution has not answered it (a query, extension, release or return: an institution that never
    answers would otherwise keep its case open for good; an approved extension or release by a supervisor).
    A withdrawal states why; what is not sent yet is not sent, and the institution is told the instruction
    is cancelled; an answer it gives later is kept, not applied (`answers`)."""
    row = await _owned(session, instruction_id, officer)
    if officer.role != "supervisor" and row.issued_by != officer.subject:
        raise Forbidden("only the issuer or a supervisor can cancel")
    sent = row.status in states.PENDING_ANSWER
    # (the state machine says which: a hold sent is not withdrawn; here, only the words and when it lapses)
    if sent and Status.CANCELLED not in states.allowed(row.kind, row.status):
        lapses = row.expires_at.isoformat() if row.expires_at is not None else None
        raise Conflict(
            f"a {row.kind} sent to its institution is not withdrawn: it lapses by itself"
            + (f" at {lapses}" if lapses else "")
            + ", and once in force it is released",
            details={"current_status": row.status, "expires_at": lapses},
        )
    if sent and row.kind in states.NEEDS_APPROVAL and officer.role != "supervisor":
        raise Forbidden(f"an approved {row.kind} is withdrawn by a supervisor")
    note = note.strip() if note else None
    if sent and not note:
        problem = "a withdrawal of an instruction sent to its institution states why"
        raise InvalidInput(problem, field="body.note")
    now = datetime.now(UTC)
    await transition(
        session,
        row,
        Status.CANCELLED,
        actor=audit.Actor.of(officer),
        action="instruction.withdrawn" if sent else "instruction.cancelled",
        now=now,
        decision_note=note,
    )
    if sent:
        await delivery.withdraw_instruction(session, str(row.id), at=now)
        await notify(session, row, notice="cancelled", ctx=ctx)
    return row


async def mark_delivered(
    session: AsyncSession, *, instruction_ids: Sequence[uuid.UUID], at: datetime
) -> None:
    """The relay carried these instructions to their institution; answers may have overtaken it."""
    if not instruction_ids:
        return
    for row in await repository.get_many_for_update(session, list(set(instruction_ids))):
        if row.status == Status.ISSUED:
            await transition(
                session,
                row,
                Status.DELIVERED,
                actor=audit.SYSTEM,
                action="instruction.delivered",
                now=at,
                flush=False,
                delivered_at=at,
            )
        elif row.delivered_at is None:
            row.delivered_at = at
    await session.flush()


async def lock(session: AsyncSession, instruction_ids: Iterable[uuid.UUID]) -> None:
    """Hold the instructions' rows for the rest of the transaction (a relay deciding their delivery failed),
    taken in the lock order (`repository.get_many_for_update`), as the relay's marking delivered takes them:
    two relays giving up (or delivering) the same instructions' messages in other orders would each hold a
    row the other waits for (a deadlock)."""
    await repository.get_many_for_update(session, list(set(instruction_ids)))


async def delivery_failed(
    session: AsyncSession, *, instruction_id: uuid.UUID, error: str, topic_prefix: str
) -> None:
    """No channel could deliver the instruction: it fails, and supervisors are told."""
    row = await repository.get(session, instruction_id, for_update=True)
    if row is None or row.status != Status.ISSUED:
        return  # delivered by another channel, or answered: nothing failed
    now = datetime.now(UTC)
    await transition(
        session,
        row,
        Status.FAILED,
        actor=audit.SYSTEM,
        action="instruction.delivery_failed",
        now=now,
        outcome_reason=error,
    )
    await escalation.announce(session, row, stage="delivery", due_at=None, now=now, topic_prefix=topic_prefix)


async def notice_failed(
    session: AsyncSession, *, instruction_id: uuid.UUID, notice: str, error: str, topic_prefix: str
) -> None:
    """A notice about the instruction (its hold lapsed, it is cancelled) reached its institution on no
    channel: the institution may still hold money Stopline counts as free. Supervisors are told, to reach
    the institution another way; the instruction's status is what Stopline decided and stays."""
    row = await repository.get(session, instruction_id, for_update=True)
    if row is None:
        return
    now = datetime.now(UTC)
    stage = f"notice_{notice}"
    if not await escalation.announce(
        session, row, stage=stage, due_at=None, now=now, topic_prefix=topic_prefix
    ):
        return  # the notice's other channel gave up first
    await record(
        session,
        row,
        actor=audit.SYSTEM,
        action="instruction.notice_failed",
        after={"notice": notice, "error": error[:200]},
    )


async def notify(session: AsyncSession, row: Instruction, *, notice: Notice, ctx: Context) -> None:
    """Tell the institution about a change it must act on (a lapse)."""
    await delivery.enqueue_instruction(
        session, message=to_message(row, notice=notice), topic_prefix=ctx.topic_prefix
    )
