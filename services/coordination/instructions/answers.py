"""Institutions' answers (through the API or the response topic) and what each answer sets in motion:
an executed freeze converts the stop-payment of its case on the account (in force, or executed after
it), an executed extension moves the hold's end, an executed release releases the hold (one executed in
part leaves the rest held), an executed query feeds the money-flow tree."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination import metrics
from services.coordination.cases import receivers
from services.coordination.cases import repository as cases
from services.coordination.instructions import repository
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.service import Context, _period, notify, record, transition
from services.coordination.instructions.states import ANSWERS, HOLD_KINDS, HOLDING, PENDING_ANSWER, Status
from services.coordination.money import service as money
from services.kit.audit import service as audit
from services.kit.db import after_commit
from services.kit.errors import Conflict, InvalidInput, NotFound
from streams.schemas.event_time import ahead
from streams.schemas.events import blank
from streams.schemas.instructions import Kind, QueryResult, Response

FINAL_OUTCOMES = ANSWERS - {Status.ACKNOWLEDGED}  # an answer after which the instruction waits for none
ACTIONS = {
    "acknowledged": "instruction.acknowledged",
    "executed": "instruction.executed",
    "partially_executed": "instruction.partially_executed",
    "rejected": "instruction.rejected",
    "account_not_found": "instruction.account_not_found",
}


def _refuse(field: str, problem: str) -> InvalidInput:
    return InvalidInput(problem, field=f"body.{field}")


def _responded_at(answer: Response) -> datetime:
    """When the answer was given: each channel dates one that does not say before applying it (the API
    when it receives it, the consumer when it reads it)."""
    assert answer.responded_at is not None, "an answer is dated by the channel it came on"
    return answer.responded_at


def _check_time(row: Instruction, answer: Response, *, max_ahead_s: float, now: datetime) -> None:
    """An answer is given after its instruction was issued and not later than now, give or take the clocks'
    skew. One dated outside is a wrong clock or a wrong answer: kept, its date would misstate the record
    (and one dated before the issue be refused as an illegal move it is not)."""
    at, skew = _responded_at(answer), timedelta(seconds=max_ahead_s)
    if (problem := ahead(at, max_ahead_s=max_ahead_s, now=now)) is not None:
        raise _refuse("responded_at", problem)
    if row.issued_at is not None and at < row.issued_at - skew:
        raise _refuse("responded_at", f"before the instruction was issued ({row.issued_at.isoformat()})")
    if answer.query_result is not None:
        _check_transfers(row, answer.query_result, max_ahead_s=max_ahead_s, now=now)


def _check_transfers(row: Instruction, result: QueryResult, *, max_ahead_s: float, now: datetime) -> None:
    """The answer lists the transfers out of the queried account since the query's `since`, until now
    (give or take the clocks' skew): one dated outside it, or to the account itself, was not asked for,
    and would add money the account never sent to the case's money flow. Each is named."""
    problems: list[dict[str, str]] = []
    for n, t in enumerate(result.transfers):
        where = f"body.query_result.transfers.{n}"
        if (late := ahead(t.at, max_ahead_s=max_ahead_s, now=now)) is not None:
            problems.append({"field": f"{where}.at", "reason": late})
        elif row.since is not None and t.at < row.since:
            problems.append(
                {"field": f"{where}.at", "reason": f"before the query's `since` ({row.since.isoformat()})"}
            )
        if (t.to_institution, t.to_account) == (row.institution_id, row.account):
            problems.append({"field": f"{where}.to_account", "reason": "the queried account itself"})
    if problems:
        raise InvalidInput(f"{len(problems)} transfer(s) the query did not ask for", details=problems)


# What a bank did under each kind, in the words of its refusals.
_DONE: dict[str, str] = {Kind.RELEASE: "released", Kind.RETURN_FUNDS: "returned"}


def _check_content(row: Instruction, answer: Response) -> None:
    """An answer's statement is refused when it contradicts itself or the instruction: a hold executed on
    nothing, more held, released or returned than instructed. (On the response topic, a refused answer is
    counted and skipped, as any wrong answer is there.)"""
    done = answer.outcome in ("executed", "partially_executed")
    if done and row.kind in HOLD_KINDS:
        if answer.held_amount is None:
            raise _refuse("held_amount", f"an executed {row.kind} states `held_amount`")
        # A hold of nothing is not in force and has nothing to release: a bank that found nothing to hold
        # answers rejected, with the reason (the simulated banks do).
        if answer.held_amount <= 0:
            raise _refuse(
                "held_amount",
                f"a {row.kind} that held nothing is answered `rejected` with the reason,"
                f" not {answer.outcome}",
            )
        if row.amount is not None and answer.held_amount > row.amount:
            raise _refuse(
                "held_amount", f"held {answer.held_amount} is more than the {row.amount} instructed"
            )
    if done and row.kind in _DONE:
        what = _DONE[row.kind]
        if answer.held_amount is not None and row.amount is not None and answer.held_amount > row.amount:
            raise _refuse(
                "held_amount", f"{what} {answer.held_amount} is more than the {row.amount} instructed"
            )
        if (
            answer.outcome == "executed"
            and answer.held_amount is not None
            and row.amount is not None
            and answer.held_amount != row.amount
        ):
            raise _refuse(
                "held_amount",
                f"an executed {row.kind} {what} the {row.amount} instructed; a part is partially_executed",
            )
        # A part is counted as what the bank states: a release keeps the rest held, a return leaves the rest
        # to return. A part of all of it, or of nothing, is not a part.
        if answer.outcome == "partially_executed" and (
            answer.held_amount is None
            or answer.held_amount <= 0
            or (row.amount is not None and answer.held_amount >= row.amount)
        ):
            raise _refuse(
                "held_amount",
                f"a partially executed {row.kind} states the amount {what} (`held_amount`), more than 0"
                + (f" and less than the {row.amount} instructed" if row.amount is not None else ""),
            )
    if answer.outcome == "partially_executed" and blank(answer.reason):
        raise _refuse("reason", "a partial execution states the `reason`")
    if answer.outcome == "rejected" and blank(answer.reason):
        raise _refuse("reason", "a rejection states the `reason`")
    if row.kind == Kind.QUERY and answer.outcome == "executed" and answer.query_result is None:
        raise _refuse("query_result", "an executed query carries `query_result`")


async def answer(
    session: AsyncSession, *, response: Response, channel: str, ctx: Context, by: str | None = None
) -> Instruction:
    """Apply an institution's answer once; a repeated response id returns the instruction unchanged.
    `by` names who answered when it is a person of the institution (the audit trail's actor)."""
    row = await _locked(session, response)
    # An institution learns nothing about instructions that are not addressed to it.
    if row is None or row.institution_id != response.institution_id or row.issued_at is None:
        raise NotFound(f"no instruction {response.instruction_id} for {response.institution_id}")
    previous = await repository.get_response(session, response.response_id)
    if previous is not None:
        if previous.instruction_id != row.id:
            raise _refuse("response_id", "this response id was used for another instruction")
        # A repeat is the same decision: one sent again corrected (another outcome or amount, after a
        # timeout) would be dropped as a repeat without a word. (A query's details may differ in ids a
        # form makes afresh; its outcome is the decision.)
        if (previous.outcome, previous.held_amount) != (response.outcome, response.held_amount):
            raise Conflict(
                "this response id was used for another answer to this instruction",
                details={"field": "body.response_id", "outcome": previous.outcome},
            )
        return row
    _check_time(row, response, max_ahead_s=ctx.max_ahead_s, now=datetime.now(UTC))
    _check_content(row, response)
    if await _acknowledged_after_the_answer(session, row, response):
        # An acknowledgement that came after the institution's final answer (sent before it, or its
        # system acknowledges late): nothing is left for it to say. Kept and audited, as an answer after a
        # withdrawal is, not refused: a refusal would lose it and send the institution retrying.
        await _keep(session, row, response, channel, by=by, action="instruction.acknowledged_after_answer")
        return row
    if await _given_before_the_lapse(session, row, response):
        # The hold stays lapsed (its period is over at the bank too, which was told so); the answer is
        # kept and audited, not refused as an illegal move.
        await _keep(session, row, response, channel, by=by, action="instruction.answered_after_lapse")
        return row
    if (superseded := await _superseded(session, row, response)) is not None:
        # Delivery had been given up (the last attempt timed out after the institution took it), and since
        # then the same instruction was issued again, or its case closed (a failed one does not keep a case
        # open): the institution answers the first after all. Kept and audited; nothing of it is to be in
        # effect, so the institution is told it is cancelled (a hold it placed under it is lifted; the
        # simulated banks do).
        await _keep(
            session,
            row,
            response,
            channel,
            by=by,
            action="instruction.answered_after_failure",
            why=superseded,
        )
        await notify(session, row, notice="cancelled", ctx=ctx)
        return row
    if await _extends_a_lapsed_hold(session, row, response):
        # The hold ended (lapsed, released) before the institution extended it, or before Stopline read
        # that it had: the institution was told it lapsed, and nothing extends a hold that is not in force.
        # The extension is cancelled, its institution told, and the answer kept beside it.
        now = datetime.now(UTC)
        await transition(
            session,
            row,
            Status.CANCELLED,
            actor=audit.SYSTEM,
            action="instruction.extended_after_lapse",
            now=now,
            outcome_reason="the hold was no longer in force when the extension was executed",
        )
        await _store(session, row, response, channel)
        await notify(session, row, notice="cancelled", ctx=ctx)
        return row
    if row.status == Status.CANCELLED:
        # Withdrawn after it was sent (an unapproved request never reaches an institution): the answer
        # crossed the withdrawal, or the institution acted before it read it. Kept and audited for the
        # officers to see, not applied: the case may be closed since, and nobody waits for it.
        await _keep(session, row, response, channel, by=by, action="instruction.answered_after_withdrawal")
        return row
    now = datetime.now(UTC)
    held = (
        response.held_amount
        if row.kind in (Kind.STOP_PAYMENT, Kind.FREEZE, Kind.RETURN_FUNDS, Kind.RELEASE)
        else None
    )
    if held is None and row.kind in (Kind.RELEASE, Kind.RETURN_FUNDS) and response.outcome == "executed":
        held = row.amount
    await transition(
        session,
        row,
        response.outcome,
        actor=audit.Actor(by or response.institution_id, "institution", response.institution_id),
        action=ACTIONS[response.outcome],
        now=now,
        answered_at=now,
        held_amount=held if response.outcome in ("executed", "partially_executed") else row.held_amount,
        outcome_reason=response.reason,
    )
    await _store(session, row, response, channel)
    after_commit(session, metrics.RESPONSES.labels(channel, response.outcome).inc)
    if response.outcome in ("executed", "partially_executed"):
        await _effects(session, row, response, ctx=ctx, now=now)
    return row


# A hold's statuses while it is in force (or may be, not yet answered): what an extension extends.
EXTENDABLE = frozenset({*PENDING_ANSWER, *HOLDING})
# Answers that put an instruction in effect at its institution; and the statuses of one that did nothing.
SUPERSEDED_IN_EFFECT = frozenset({"acknowledged", "executed", "partially_executed"})
NOTHING_DONE = frozenset(
    {Status.FAILED, Status.DECLINED, Status.CANCELLED, Status.REJECTED, Status.ACCOUNT_NOT_FOUND}
)


# Statuses from which the relay may fail an instruction (give its delivery up) while its answer waits for it.
MAY_FAIL = frozenset({Status.AWAITING_APPROVAL, Status.ISSUED})


def _checks_the_case(row: Instruction, response: Response, *, statuses: Iterable[str]) -> bool:
    """Whether this answer, to the instruction in one of `statuses`, is one `_superseded` checks against the
    case: one that would put a failed instruction (not a query) in effect."""
    return row.status in statuses and response.outcome in SUPERSEDED_IN_EFFECT and row.kind != Kind.QUERY


def _feeds_the_tree(row: Instruction, response: Response) -> bool:
    """Whether this answer, applied, adds the query's transfers to the case's money-flow tree (`_effects`),
    which takes the case's row (`money.service.record_query_answer`)."""
    done = response.outcome in ("executed", "partially_executed")
    return row.kind == Kind.QUERY and done and response.query_result is not None


async def _locked(session: AsyncSession, response: Response) -> Instruction | None:
    """The answered instruction, locked for update; and, when the answer is one `_superseded` checks, its
    case first, for update; when it feeds the money-flow tree, its case first as the tree needs it
    (`_case_for_the_tree`). The case's lock comes before the instruction's (cases.repository): this answer,
    holding a failed hold, would otherwise wait for the case that an approval or issue of the hold's
    extension holds while it waits for the hold; holding a query, it would wait for the case (its effects
    take it) that an approval holds while it waits for a hold that a relay's batch of the hold and the query
    holds while it waits for the query. The other answers lock no case."""
    iid = response.instruction_id
    seen = await repository.get(session, iid)
    if seen is None or seen.institution_id != response.institution_id:
        return seen  # (refused: not found)
    if _feeds_the_tree(seen, response):
        await _case_for_the_tree(session, seen)
        return await _lock(session, seen, response)
    case_id, may_fail = seen.case_id, _checks_the_case(seen, response, statuses=MAY_FAIL)
    if may_fail:
        # Failed by the relay while this answer waited for it, the instruction is let go (its lock was taken
        # in a savepoint, rolled back) and locked again after its case.
        savepoint = await session.begin_nested()
        row = await _lock(session, seen, response)
        if row is None or row.status != Status.FAILED:
            await savepoint.commit()
            return row
        await savepoint.rollback()
    if may_fail or _checks_the_case(seen, response, statuses=(Status.FAILED,)):
        await cases.get(session, case_id, lock="update")
    return await _lock(session, seen, response)


async def _case_for_the_tree(session: AsyncSession, query: Instruction) -> None:
    """Lock the case of a query whose answer feeds the tree: for key share, as the tree's nodes need it
    (issues and approvals share the case beside it, not waiting while the answer waits for its query, or
    applies thousands of transfers); for update when the query is of a victim's account (its effects grow
    the case's loss). Whose the account is, is read under the key share: only a change of the case (for
    update, which waits for it) makes an account a victim's. A victim's lets the key share go (a savepoint
    rolled back) before it takes the update, holding nothing then: two such answers waiting for the update
    holding their key shares would each wait for the other's."""
    savepoint = await session.begin_nested()
    case = await cases.get(session, query.case_id, lock="key_share")
    if case is None or not await money.queries_a_victim(session, case, query):
        await savepoint.commit()
        return
    await savepoint.rollback()
    await cases.get(session, query.case_id, lock="update")


async def _lock(session: AsyncSession, seen: Instruction, response: Response) -> Instruction | None:
    """The answered instruction, locked; a stop-payment or freeze this answer may put in force, with the
    case's other holds of its account, all in the lock order (cases.repository), as a relay's batch takes
    them. Its effects take the other in force (to convert the stop-payment): locking its own row first, it
    would hold it while it waits for the other that a batch of both holds while it waits for it. Two such
    answers take their turns on the same rows, so each sees the other in force once it has committed."""
    if seen.kind not in HOLD_KINDS or response.outcome not in ("executed", "partially_executed"):
        return await repository.get(session, seen.id, for_update=True)
    holds = await repository.account_holds(
        session, case_id=seen.case_id, institution_id=seen.institution_id, account=seen.account
    )
    return next((r for r in await repository.get_many_for_update(session, holds) if r.id == seen.id), None)


async def _acknowledged_after_the_answer(session: AsyncSession, row: Instruction, response: Response) -> bool:
    """Whether this is an acknowledgement of an instruction its institution has answered finally (one
    dated before the instruction was issued acknowledges nothing of it: refused as before)."""
    if response.outcome != "acknowledged" or row.status in (*PENDING_ANSWER, Status.FAILED, Status.CANCELLED):
        return False
    if row.issued_at is None or _responded_at(response) < row.issued_at:
        return False
    return any(r.outcome in FINAL_OUTCOMES for r in await repository.responses(session, row.id))


async def _given_before_the_lapse(session: AsyncSession, row: Instruction, response: Response) -> bool:
    """An answer the institution gave (its `responded_at`, its statement like the rest of the answer)
    while the hold was in force, read only after the expiry job had lapsed it (this service was behind: a
    restart, an outage), to an instruction that had no final answer yet: it is kept. Anything else to a
    lapsed hold is an illegal move, as before."""
    if row.status != Status.EXPIRED or row.expires_at is None or row.issued_at is None:
        return False
    if not row.issued_at <= _responded_at(response) <= row.expires_at:
        return False
    earlier = await repository.responses(session, row.id)
    return not any(r.outcome in FINAL_OUTCOMES for r in earlier)


async def _extends_a_lapsed_hold(session: AsyncSession, row: Instruction, response: Response) -> bool:
    """Whether this is an extension executed while waiting for it, whose hold is no longer in force."""
    if row.kind != Kind.EXTEND or response.outcome not in SUPERSEDED_IN_EFFECT:
        return False
    return row.status in PENDING_ANSWER and not await _hold_extendable(session, row)


async def _hold_extendable(session: AsyncSession, extension: Instruction) -> bool:
    """Whether the hold an extension is of is (or may yet be) in force."""
    parent = (
        await repository.get(session, extension.parent_id, for_update=True) if extension.parent_id else None
    )
    return parent is not None and parent.status in EXTENDABLE


async def _superseded(session: AsyncSession, row: Instruction, response: Response) -> str | None:
    """Why the answer of a failed instruction (delivery given up) that would put it in effect is not to be
    applied, if it is not: its case closed since ("case_closed"), an extension's hold no longer in force
    ("hold_not_in_force"), or the same instruction issued again since ("issued_again"): the same hold on
    the account (one is in force: the database's unique index), or the same follow-up (extension, release,
    return) of the same hold."""
    if not _checks_the_case(row, response, statuses=(Status.FAILED,)):
        return None  # (a query's answer holds nothing: applied as it comes)
    # Locked for update (by `_locked`, before the instruction): an instruction being issued in the case (it
    # share-locks the case), or the case being closed, has committed, or waits. A share lock would run beside
    # an issue of the same hold, not see it, and put this one in force too, which the one-hold index refuses
    # as the issue commits.
    case = await cases.get(session, row.case_id, lock="update")
    if case is not None and case.status == "closed":
        return "case_closed"
    if row.kind == Kind.EXTEND and not await _hold_extendable(session, row):
        return "hold_not_in_force"
    if row.kind in HOLD_KINDS:
        again = await repository.find_active(
            session,
            case_id=row.case_id,
            kind=row.kind,
            institution_id=row.institution_id,
            account=row.account,
        )
        return "issued_again" if again is not None else None
    assert row.parent_id is not None  # an extension, release or return: of a hold
    siblings = await repository.children(session, row.parent_id, row.kind)
    return "issued_again" if any(c.id != row.id and c.status not in NOTHING_DONE for c in siblings) else None


async def _keep(
    session: AsyncSession,
    row: Instruction,
    response: Response,
    channel: str,
    *,
    by: str | None,
    action: str,
    why: str | None = None,
) -> None:
    """An answer kept and audited that does not move the instruction (`why`, in the audit entry)."""
    await _store(session, row, response, channel)
    await record(
        session,
        row,
        actor=audit.Actor(by or response.institution_id, "institution", response.institution_id),
        action=action,
        after={
            "outcome": response.outcome,
            "responded_at": _responded_at(response).isoformat(),
            **({"kept_because": why} if why else {}),
        },
    )
    after_commit(session, metrics.RESPONSES.labels(channel, response.outcome).inc)


async def _store(session: AsyncSession, row: Instruction, response: Response, channel: str) -> None:
    """Keep the answer; its id taken meanwhile by an answer to another instruction (whose row lock this
    one did not wait on) undoes the whole answer."""
    stored = await repository.add_response(
        session,
        {
            "response_id": response.response_id,
            "instruction_id": row.id,
            "institution_id": response.institution_id,
            "outcome": response.outcome,
            "held_amount": response.held_amount,
            "reason": response.reason,
            "query_result": response.query_result.model_dump(mode="json") if response.query_result else None,
            "channel": channel,
            "responded_at": _responded_at(response),
        },
    )
    if not stored:
        raise _refuse("response_id", "this response id was used for another instruction")


async def _effects(
    session: AsyncSession, row: Instruction, response: Response, *, ctx: Context, now: datetime
) -> None:
    actor = audit.Actor.institution(response.institution_id)
    if row.kind == Kind.FREEZE:
        await receivers.freeze_executed(session, row=row, at=now, topic_prefix=ctx.topic_prefix)
        # The freeze takes over the provisional stop-payment on the same account.
        stop = await repository.active_hold(
            session,
            case_id=row.case_id,
            kind=Kind.STOP_PAYMENT,
            institution_id=row.institution_id,
            account=row.account,
        )
        if stop is not None:
            await transition(
                session,
                stop,
                Status.CONVERTED,
                actor=actor,
                action="instruction.converted_to_freeze",
                now=now,
            )
    elif row.kind == Kind.EXTEND and row.parent_id is not None:
        parent = await repository.get(session, row.parent_id, for_update=True)
        if parent is not None and parent.status in EXTENDABLE:
            base = max(parent.expires_at or now, now)
            before = {"expires_at": parent.expires_at, "renewals": parent.renewals}
            parent.expires_at = base + _period(parent.kind, ctx.policy)
            parent.renewals += 1
            parent.updated_at = now
            await session.flush()
            await record(
                session,
                parent,
                actor=actor,
                action="instruction.renewed",
                before=before,
                after={"expires_at": parent.expires_at, "renewals": parent.renewals},
                basis=row,
            )
    elif row.kind == Kind.STOP_PAYMENT:
        # Executed after a freeze of its case on the account was (answers cross, or the bank took the
        # freeze first): the freeze holds the money, and takes the stop-payment over as it would have one
        # in force; left beside it, both would count the same money. At the bank the stop-payment came
        # after the freeze took over what was held then, so it is a hold of its own: the bank is told it
        # is cancelled, and lifts it (nothing else would: a converted instruction neither lapses nor is
        # released).
        freeze = await repository.active_hold(
            session,
            case_id=row.case_id,
            kind=Kind.FREEZE,
            institution_id=row.institution_id,
            account=row.account,
        )
        if freeze is not None:
            await transition(
                session, row, Status.CONVERTED, actor=actor, action="instruction.converted_to_freeze", now=now
            )
            await notify(session, row, notice="cancelled", ctx=ctx)
    elif row.kind == Kind.RELEASE and row.parent_id is not None:
        parent = await repository.get(session, row.parent_id, for_update=True)
        if parent is not None and parent.status in HOLDING:
            await _release(session, parent, row, actor=actor, now=now)
    elif row.kind == Kind.QUERY and response.query_result is not None:
        await money.record_query_answer(
            session, instruction=row, result=response.query_result, policy=ctx.policy, actor=actor
        )


async def _release(
    session: AsyncSession, parent: Instruction, release: Instruction, *, actor: audit.Actor, now: datetime
) -> None:
    """An executed release ends the hold. A partly executed one (the bank released `held_amount` of it)
    leaves the rest held: the hold stays in force for the rest, which lapses with it or is released by
    another release; what was released may be returned (`service`)."""
    released = release.held_amount or Decimal(0)
    rest = (parent.held_amount or Decimal(0)) - released
    if release.status == Status.EXECUTED or rest <= 0:
        await transition(
            session, parent, Status.RELEASED, actor=actor, action="instruction.released", now=now
        )
        return
    before = {"held_amount": parent.held_amount}
    parent.held_amount = rest
    parent.updated_at = now
    await session.flush()
    await record(
        session,
        parent,
        actor=actor,
        action="instruction.partially_released",
        before=before,
        after={"held_amount": rest, "released": released, "release_id": str(release.id)},
        basis=release,
    )
