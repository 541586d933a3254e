"""Routes an institution calls with its API key: the instructions addressed to it, and its answers."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.deps import Deps
from services.coordination.instructions import answers, repository, service
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.schemas import InstitutionPage, InstitutionView, ResponseCreate
from services.coordination.instructions.states import STATUSES
from services.institutions.credentials import Caller
from services.kit import pages
from services.kit.errors import Forbidden, InvalidInput, NotFound
from streams.schemas.instructions import Response


def _view(row: Instruction) -> InstitutionView:
    return InstitutionView(status=row.status, message=service.to_message(row))


def router(deps: Deps) -> APIRouter:
    api = APIRouter(prefix="/v1/institution/instructions", tags=["institution"])
    Session = Annotated[AsyncSession, Depends(deps.session)]
    Inst = Annotated[Caller, Depends(deps.institution)]

    def financial(caller: Caller) -> None:
        if caller.kind not in ("bank", "payment"):
            raise Forbidden("only banks and payment providers receive instructions")

    @api.get("", response_model=InstitutionPage, summary="Instructions addressed to the caller, newest first")
    async def mine(
        session: Session,
        caller: Inst,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: str | None = None,
    ) -> InstitutionPage:
        financial(caller)
        if status is not None and status not in STATUSES:
            problem = f"status is one of {', '.join(STATUSES)}"
            raise InvalidInput(problem, field="query.status")
        rows = await repository.search(
            session,
            institution_id=caller.institution_id,
            status=status,
            hide_unissued=True,
            limit=limit + 1,
            after=pages.after(cursor) if cursor else None,
        )
        page = rows[:limit]
        last = page[-1] if len(rows) > limit else None
        next_cursor = pages.cursor_of(last.issued_at, last.id) if last and last.issued_at else None
        return InstitutionPage(items=[_view(r) for r in page], next_cursor=next_cursor)

    @api.get(
        "/{instruction_id}", response_model=InstitutionView, summary="One instruction addressed to the caller"
    )
    async def one(instruction_id: uuid.UUID, session: Session, caller: Inst) -> InstitutionView:
        financial(caller)
        row = await repository.get(session, instruction_id)
        if row is None or row.institution_id != caller.institution_id or row.issued_at is None:
            raise NotFound(f"no instruction {instruction_id}")
        return _view(row)

    @api.post(
        "/{instruction_id}/responses",
        response_model=InstitutionView,
        summary="Answer: acknowledged, executed (held), partially executed, rejected, account not found",
    )
    async def respond(
        instruction_id: uuid.UUID, body: ResponseCreate, session: Session, caller: Inst
    ) -> InstitutionView:
        financial(caller)
        response = Response(
            response_id=body.response_id,
            instruction_id=instruction_id,
            institution_id=caller.institution_id,
            outcome=body.outcome,
            held_amount=body.held_amount,
            reason=body.reason,
            query_result=body.query_result,
            responded_at=body.responded_at or datetime.now(UTC),
        )
        row = await answers.answer(session, response=response, channel="api", ctx=deps.ctx, by=caller.name)
        return _view(row)

    return api
