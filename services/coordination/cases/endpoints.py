"""Routes of /v1/cases: cases, their notes and alerts, the money-flow tree and its proposals."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.audit.schemas import AuditPage, AuditRead
from services.coordination.cases import access, repository, service
from services.coordination.cases.schemas import (
    CaseCreate,
    CaseDetail,
    CaseRead,
    CaseUpdate,
    LinkAlert,
    NoteCreate,
    NoteRead,
)
from services.coordination.deps import Deps
from services.coordination.instructions import repository as instructions_repo
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.schemas import InstructionRead
from services.coordination.instructions.service import returnable
from services.coordination.money import flows
from services.coordination.money import repository as money_repo
from services.coordination.money import service as money
from services.coordination.money.schemas import Accept, FlowView, ProposalRead
from services.kit.audit import repository as audit_repo
from services.kit.auth import Officer, Role, require_role
from streams.schemas.events import Instant
from streams.schemas.instructions import Kind

CLOSE_REFUSED = (
    "the case is closed already, or its money work is not done: a hold in force, a request awaiting"
    " approval, an instruction awaiting its institution's answer; `details.blocking` names each"
    " (`instruction_id`, `kind`, `status`, `institution_id`, `expires_at`)"
)
READERS: tuple[Role, ...] = ("operator", "supervisor", "auditor")
WORKERS: tuple[Role, ...] = ("operator", "supervisor")


def router(deps: Deps) -> APIRouter:
    api = APIRouter(prefix="/v1/cases", tags=["cases"])
    Session = Annotated[AsyncSession, Depends(deps.session)]
    Who = Annotated[Officer, Depends(deps.officer)]

    @api.post("", response_model=CaseRead, status_code=201, summary="Open a case from an alert or a report")
    async def open_case(body: CaseCreate, session: Session, who: Who) -> CaseRead:
        require_role(who, *WORKERS)
        service.check_past(body, max_ahead_s=deps.ctx.max_ahead_s, now=datetime.now(UTC))
        return CaseRead.model_validate(await service.open_case(session, spec=body, officer=who))

    @api.get("", response_model=list[CaseRead], summary="Cases of the caller's unit, newest first")
    async def list_cases(
        session: Session,
        who: Who,
        status: Literal["open", "closed"] | None = None,
        before: Instant | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[CaseRead]:
        require_role(who, *READERS)
        unit = None if who.role == "auditor" else who.unit
        rows = await repository.page(session, unit=unit, status=status, before=before, limit=limit)
        return [CaseRead.model_validate(r) for r in rows]

    @api.get(
        "/{case_id}", response_model=CaseDetail, summary="A case with its alerts, notes and instructions"
    )
    async def get_case(case_id: uuid.UUID, session: Session, who: Who) -> CaseDetail:
        require_role(who, *READERS)
        case = await access.readable(session, case_id, who)
        return CaseDetail(
            **CaseRead.model_validate(case).model_dump(),
            alert_ids=await repository.alert_ids(session, case.id),
            notes=[NoteRead.model_validate(n) for n in await repository.notes(session, case.id)],
            instructions=_with_returnable(await instructions_repo.for_case(session, case.id)),
        )

    @api.patch(
        "/{case_id}",
        response_model=CaseRead,
        summary="Assign, or close a case with its outcome",
        responses={409: {"description": CLOSE_REFUSED}},
    )
    async def update_case(case_id: uuid.UUID, body: CaseUpdate, session: Session, who: Who) -> CaseRead:
        require_role(who, *WORKERS)
        case = await access.workable(session, case_id, who, lock="update")
        return CaseRead.model_validate(
            await service.update(
                session, case=case, spec=body, officer=who, topic_prefix=deps.ctx.topic_prefix
            )
        )

    @api.post("/{case_id}/notes", response_model=NoteRead, status_code=201, summary="Add a note")
    async def add_note(case_id: uuid.UUID, body: NoteCreate, session: Session, who: Who) -> NoteRead:
        require_role(who, *WORKERS)
        case = await access.workable(session, case_id, who)
        return NoteRead.model_validate(
            await service.add_note(session, case=case, text=body.text, officer=who)
        )

    @api.post("/{case_id}/alerts", status_code=204, summary="Link another alert to the case")
    async def link_alert(case_id: uuid.UUID, body: LinkAlert, session: Session, who: Who) -> None:
        require_role(who, *WORKERS)
        case = await access.workable(session, case_id, who, lock="update")  # not while it closes
        await service.link_alert(session, case=case, alert_id=body.alert_id, officer=who)

    @api.get(
        "/{case_id}/timeline",
        response_model=AuditPage,
        summary="Everything that happened in the case, in order (its audit entries)",
    )
    async def timeline(
        case_id: uuid.UUID,
        session: Session,
        who: Who,
        after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
        newest: Annotated[
            bool,
            Query(description="the last `limit` entries (still in order), not the first: nothing follows"),
        ] = False,
    ) -> AuditPage:
        require_role(who, *READERS)
        case = await access.readable(session, case_id, who)
        rows = await audit_repo.page(
            session,
            case_id=case.id,
            entity_id=None,
            actor=None,
            since=None,
            after_id=after_id,
            limit=limit,
            newest=newest,
        )
        return AuditPage(
            items=[AuditRead.model_validate(r) for r in rows],
            next_after_id=rows[-1].id if len(rows) == limit and not newest else None,
        )

    @api.get("/{case_id}/flow", response_model=FlowView, summary="The money-flow tree and what is recovered")
    async def get_flow(case_id: uuid.UUID, session: Session, who: Who) -> FlowView:
        require_role(who, *READERS)
        return await money.flow(session, case=await access.readable(session, case_id, who))

    @api.get("/{case_id}/proposals", response_model=list[ProposalRead], summary="Proposed next-hop stops")
    async def list_proposals(
        case_id: uuid.UUID,
        session: Session,
        who: Who,
        status: Literal["open", "accepted", "dismissed"] | None = None,
    ) -> list[ProposalRead]:
        require_role(who, *READERS)
        case = await access.readable(session, case_id, who)
        return [
            ProposalRead.model_validate(p)
            for p in await money_repo.proposals(session, case.id, status=status)
        ]

    @api.post(
        "/{case_id}/proposals/accept",
        response_model=list[InstructionRead],
        summary="Issue the proposed next-hop stop-payments (and queries) in one action",
    )
    async def accept_proposals(
        case_id: uuid.UUID, body: Accept, session: Session, who: Who
    ) -> list[InstructionRead]:
        require_role(who, *WORKERS)
        case = await access.workable(session, case_id, who, lock="update")  # not while it closes
        rows = await flows.accept(
            session,
            case=case,
            officer=who,
            proposal_ids=body.proposal_ids,
            follow_with_query=body.follow_with_query,
            ctx=deps.ctx,
        )
        return [InstructionRead.model_validate(r) for r in rows]

    return api


def _with_returnable(rows: list[Instruction]) -> list[InstructionRead]:
    """A case's instructions, each freeze with what is left to return (its children are in the case)."""
    reads = [InstructionRead.model_validate(i) for i in rows]
    for read in reads:
        if read.kind == Kind.FREEZE:
            read.returnable_amount = returnable(i for i in rows if i.parent_id == read.id)[1]
    return reads
