"""Officer routes of instructions: issue within a case, read, approve, decline, cancel; overdue list."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.cases import access
from services.coordination.deps import Deps
from services.coordination.instructions import repository, service
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.schemas import (
    Decision,
    InstructionCreate,
    InstructionRead,
    ResponseRead,
)
from services.coordination.instructions.states import STATUSES
from services.kit.auth import Officer, Role, require_role
from services.kit.errors import InvalidInput, NotFound
from streams.schemas.events import Instant
from streams.schemas.instructions import Kind

READERS: tuple[Role, ...] = ("operator", "supervisor", "auditor")


def router(deps: Deps) -> APIRouter:
    api = APIRouter(tags=["instructions"])
    Session = Annotated[AsyncSession, Depends(deps.session)]
    Who = Annotated[Officer, Depends(deps.officer)]

    async def visible(session: AsyncSession, instruction_id: uuid.UUID, who: Officer) -> Instruction:
        row = await repository.get(session, instruction_id)
        if row is None or (who.role != "auditor" and row.issued_by_unit != who.unit):
            raise NotFound(f"no instruction {instruction_id}")
        return row

    @api.post(
        "/v1/cases/{case_id}/instructions",
        response_model=InstructionRead,
        status_code=201,
        summary="Issue a query, stop-payment, freeze, extension, release or return",
    )
    async def issue(
        case_id: uuid.UUID, body: InstructionCreate, session: Session, who: Who
    ) -> InstructionRead:
        require_role(who, "operator", "supervisor")
        # Share-locked: a close (which locks the row for update) committing meanwhile would otherwise leave
        # this instruction on a closed case; issues in one case do not wait for each other (two of the same
        # hold: the database's unique index answers the second 409).
        case = await access.workable(session, case_id, who, lock="share")
        row = await service.issue(session, case=case, officer=who, spec=body, ctx=deps.ctx)
        return InstructionRead.model_validate(row)

    @api.get(
        "/v1/cases/{case_id}/instructions",
        response_model=list[InstructionRead],
        summary="A case's instructions",
    )
    async def for_case(case_id: uuid.UUID, session: Session, who: Who) -> list[InstructionRead]:
        require_role(who, *READERS)
        case = await access.readable(session, case_id, who)
        return [InstructionRead.model_validate(r) for r in await repository.for_case(session, case.id)]

    @api.get(
        "/v1/instructions",
        response_model=list[InstructionRead],
        summary="Instructions of the caller's unit; `overdue=true` lists the escalated ones",
    )
    async def search(
        session: Session,
        who: Who,
        status: str | None = None,
        overdue: bool | None = None,
        kind: Kind | None = None,
        holding: Annotated[bool | None, Query(description="holds in force (executed, partially)")] = None,
        expires_before: Annotated[Instant | None, Query(description="holds lapsing before this time")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[InstructionRead]:
        require_role(who, *READERS)
        if status is not None and status not in STATUSES:
            problem = f"status is one of {', '.join(STATUSES)}"
            raise InvalidInput(problem, field="query.status")
        unit = None if who.role == "auditor" else who.unit
        rows = await repository.search(
            session,
            unit=unit,
            status=status,
            overdue=overdue,
            kind=kind,
            holding=holding,
            expires_before=expires_before,
            limit=limit,
        )
        return [InstructionRead.model_validate(r) for r in rows]

    @api.get("/v1/instructions/{instruction_id}", response_model=InstructionRead, summary="One instruction")
    async def get_one(instruction_id: uuid.UUID, session: Session, who: Who) -> InstructionRead:
        require_role(who, *READERS)
        return InstructionRead.model_validate(await visible(session, instruction_id, who))

    @api.get(
        "/v1/instructions/{instruction_id}/responses",
        response_model=list[ResponseRead],
        summary="The institution's answers, as given",
    )
    async def responses(instruction_id: uuid.UUID, session: Session, who: Who) -> list[ResponseRead]:
        require_role(who, *READERS)
        row = await visible(session, instruction_id, who)
        return [ResponseRead.model_validate(r) for r in await repository.responses(session, row.id)]

    @api.post(
        "/v1/instructions/{instruction_id}/approve",
        response_model=InstructionRead,
        summary="Approve (a supervisor other than the issuer, with an optional note); it is issued",
    )
    async def approve(
        instruction_id: uuid.UUID, session: Session, who: Who, body: Decision | None = None
    ) -> InstructionRead:
        require_role(who, "supervisor")
        note = body.note if body is not None else None
        row = await service.approve(
            session, instruction_id=instruction_id, officer=who, ctx=deps.ctx, note=note
        )
        return InstructionRead.model_validate(row)

    @api.post(
        "/v1/instructions/{instruction_id}/decline",
        response_model=InstructionRead,
        summary="Decline, with the reason",
    )
    async def decline(
        instruction_id: uuid.UUID, body: Decision, session: Session, who: Who
    ) -> InstructionRead:
        require_role(who, "supervisor")
        row = await service.decline(session, instruction_id=instruction_id, officer=who, note=body.note)
        return InstructionRead.model_validate(row)

    @api.post(
        "/v1/instructions/{instruction_id}/cancel",
        response_model=InstructionRead,
        summary="Withdraw a request not yet approved, or an instruction not answered yet (not a hold)",
        description="An instruction already sent to its institution (a query, extension, release or return"
        " awaiting its answer) is withdrawn with the reason (`note`, required then) and the institution is"
        " told it is cancelled; an answer it gives later is kept in the instruction's answers and the audit"
        " log, not applied. A stop-payment or freeze sent is not withdrawn: it lapses by itself, and once in"
        " force it is released.",
    )
    async def cancel(
        instruction_id: uuid.UUID, session: Session, who: Who, body: Decision | None = None
    ) -> InstructionRead:
        require_role(who, "operator", "supervisor")
        note = body.note if body is not None else None
        row = await service.cancel(
            session, instruction_id=instruction_id, officer=who, note=note, ctx=deps.ctx
        )
        return InstructionRead.model_validate(row)

    return api
