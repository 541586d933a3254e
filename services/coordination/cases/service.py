"""Case rules: opening from an alert or a report, assignment, closing with its outcome, notes, linking
alerts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.cases import receivers, repository
from services.coordination.cases.models import Case, CaseNote
from services.coordination.cases.schemas import CaseCreate, CaseUpdate, OpenWork, outcome_problem
from services.coordination.instructions import repository as instructions
from services.coordination.instructions.states import HOLDING, PENDING_ANSWER, Status
from services.coordination.money import service as money
from services.kit.audit import service as audit
from services.kit.auth import Officer
from services.kit.errors import Conflict, InvalidInput
from services.kit.logging import pseudonym
from streams.schemas.event_time import ahead


def _snapshot(case: Case) -> dict[str, object]:
    # Phone and account numbers are pseudonymised in the audit trail, as in logs.
    return {
        "case_number": case.case_number,
        "status": case.status,
        "assignee": case.assignee,
        "amount_lost": case.amount_lost,
        "outcome": case.outcome,
        "victim_phone": pseudonym(case.victim_phone) if case.victim_phone else None,
    }


def check_past(spec: CaseCreate, *, max_ahead_s: float, now: datetime) -> None:
    """The loss and the payments a case is opened with have happened: one dated ahead of the clock (by
    more than the skew allowed to events) is a wrong date, and would misdate the case's money flow."""
    times = [("body.lost_at", spec.lost_at)]
    times += [(f"body.destinations.{n}.at", d.at) for n, d in enumerate(spec.destinations)]
    problems = [
        {"field": field, "reason": problem}
        for field, at in times
        if (problem := ahead(at, max_ahead_s=max_ahead_s, now=now)) is not None
    ]
    if problems:
        raise InvalidInput("a loss and its payments are dated in the past", details=problems)


async def open_case(session: AsyncSession, *, spec: CaseCreate, officer: Officer) -> Case:
    case = Case(
        id=uuid.uuid4(),
        case_number=spec.case_number,
        unit=officer.unit,
        status="open",
        source=spec.source,
        title=spec.title,
        opened_by=officer.subject,
        assignee=officer.subject,
        victim_name=spec.victim.name,
        victim_phone=spec.victim.phone,
        victim_institution=spec.victim.institution_id,
        victim_account=spec.victim.account,
        amount_lost=spec.amount_lost,
        lost_at=spec.lost_at,
        opened_at=datetime.now(UTC),
    )
    await repository.add(session, case)
    for n, alert_id in enumerate(spec.alert_ids):
        await _link(session, case, alert_id, officer, field=f"body.alert_ids.{n}")
    await money.seed_from_report(
        session,
        case=case,
        destinations=[(d.institution_id, d.account, d.amount, d.at) for d in spec.destinations],
    )
    await audit.record(
        session,
        actor=audit.Actor.of(officer),
        action="case.opened",
        entity_type="case",
        entity_id=case.id,
        case_id=case.id,
        legal_basis=f"case {case.case_number}",
        after=_snapshot(case)
        | {"alerts": [str(a) for a in spec.alert_ids], "destinations": len(spec.destinations)},
    )
    return case


async def _link(
    session: AsyncSession, case: Case, alert_id: uuid.UUID, officer: Officer, *, field: str
) -> bool:
    if await repository.alert(session, alert_id) is None:
        raise InvalidInput(f"no alert {alert_id}", field=field)
    return await repository.link_alert(session, case_id=case.id, alert_id=alert_id, by=officer.subject)


async def link_alert(session: AsyncSession, *, case: Case, alert_id: uuid.UUID, officer: Officer) -> None:
    if await _link(session, case, alert_id, officer, field="body.alert_id"):
        await audit.record(
            session,
            actor=audit.Actor.of(officer),
            action="case.alert_linked",
            entity_type="case",
            entity_id=case.id,
            case_id=case.id,
            after={"alert_id": alert_id},
        )


async def update(
    session: AsyncSession, *, case: Case, spec: CaseUpdate, officer: Officer, topic_prefix: str
) -> Case:
    """Assign, or close with the outcome (required then, and only then: the label training reads); a case
    whose money work is not done is not closed. A case closed as confirmed fraud tells the blocklist the
    accounts that received its money."""
    # The request schema refuses this already; checked again for callers that build the spec themselves.
    if (problem := outcome_problem(spec.status, spec.outcome)) is not None:
        raise InvalidInput(problem, field="body.outcome")
    before = _snapshot(case)
    if spec.status is not None and spec.status != case.status:
        if spec.status == "open":
            raise Conflict("a closed case stays closed", details={"current_status": case.status})
        await _nothing_left_to_do(session, case)
        # A closed case is not worked on any more (access.workable), so the outcome is never rewritten
        # after training may have used it.
        case.status, case.closed_at, case.outcome = "closed", datetime.now(UTC), spec.outcome
        if spec.outcome == "confirmed_fraud":
            await receivers.case_confirmed(
                session, case=case, officer=officer, at=case.closed_at, topic_prefix=topic_prefix
            )
    if spec.assignee is not None:
        case.assignee = spec.assignee
    await session.flush()
    await audit.record(
        session,
        actor=audit.Actor.of(officer),
        action="case.updated",
        entity_type="case",
        entity_id=case.id,
        case_id=case.id,
        before=before,
        after=_snapshot(case),
    )
    return case


async def _nothing_left_to_do(session: AsyncSession, case: Case) -> None:
    """Refuse to close a case whose money work is not done: once closed nobody could release its holds,
    decide its requests or act on an institution's answer. The caller holds the case's row lock for update,
    which issuing and approving share and accepting proposals takes: no instruction is issued or approved
    meanwhile.
    Rejected, account-not-found, declined, cancelled, lapsed, released and converted instructions do not
    keep a case open: nothing of them is in force or waits for anyone (a converted stop-payment's freeze
    does, as a hold of its own). Nor does a failed one: its delivery was given up (supervisors are told, and
    it may be issued again), so no one is waiting on it."""
    open_work = await instructions.keeping_open(session, case.id)
    if not open_work:
        return
    said = [
        f"{n} {what}"
        for statuses, what in (
            (HOLDING, "hold(s) in force"),
            ((Status.AWAITING_APPROVAL,), "request(s) awaiting approval"),
            (PENDING_ANSWER, "instruction(s) awaiting the institution's answer"),
        )
        if (n := sum(1 for i in open_work if i.status in statuses))
    ]
    raise Conflict(
        f"case {case.case_number} has {', '.join(said)}: release the holds (or let them lapse), decide the"
        " requests awaiting approval and wait for the institutions' answers (or withdraw an unanswered"
        " query, extension, release or return) before closing it",
        details={
            "current_status": case.status,
            "blocking": [OpenWork.model_validate(i).model_dump(mode="json") for i in open_work],
        },
    )


async def add_note(session: AsyncSession, *, case: Case, text: str, officer: Officer) -> CaseNote:
    note = CaseNote(case_id=case.id, author=officer.subject, text=text, at=datetime.now(UTC))
    await repository.add_note(session, note)
    await audit.record(
        session,
        actor=audit.Actor.of(officer),
        action="case.note_added",
        entity_type="case",
        entity_id=case.id,
        case_id=case.id,
        after={"note_id": note.id},
    )
    return note
