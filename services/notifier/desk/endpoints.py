"""Routes of the phone-desk queue: list, take, release, close (officers with the operator role; a
supervisor may release a call someone else took)."""

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Officer, require_role
from services.notifier.desk import repository, service
from services.notifier.desk.models import DeskTask
from services.notifier.desk.schemas import Close, TaskPage, TaskRead
from services.notifier.warnings import service as warnings
from services.notifier.warnings.models import CitizenWarning
from services.notifier.warnings.repository import get as get_warning

SessionDep = Callable[[], AsyncIterator[AsyncSession]]


def _read(task: DeskTask, warning: CitizenWarning) -> TaskRead:
    return TaskRead(
        id=task.id,
        warning_id=task.warning_id,
        reason=task.reason,
        priority=task.priority,
        status=task.status,
        phone=warning.phone,
        language=warning.language,
        typology=warning.typology,
        amount_at_risk=warning.amount_at_risk,
        answer=warning.answer,
        taken_by=task.taken_by,
        outcome=task.outcome,
        created_at=task.created_at,
    )


def router(
    session_dep: SessionDep,
    officer_dep: Callable[..., Coroutine[Any, Any, Officer]],
    bridge: warnings.CaseBridge,
) -> APIRouter:
    api = APIRouter(prefix="/v1/desk/tasks", tags=["phone desk"])
    Session = Annotated[AsyncSession, Depends(session_dep, scope="function")]
    Who = Annotated[Officer, Depends(officer_dep)]

    @api.get("", response_model=TaskPage, summary="The queue, riskiest first")
    async def queue(
        session: Session,
        who: Who,
        status: Literal["open", "taken", "closed"] = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> TaskPage:
        require_role(who, "operator", "supervisor")
        rows = await repository.page(session, status=status, limit=limit)
        return TaskPage(items=[_read(t, w) for t, w in rows])

    @api.post("/{task_id}/take", response_model=TaskRead, summary="Take a call (only one person can)")
    async def take(task_id: uuid.UUID, session: Session, who: Who) -> TaskRead:
        require_role(who, "operator")
        task = await service.take(session, task_id=task_id, officer=who, now=datetime.now(UTC))
        return await _with_warning(session, task)

    @api.post(
        "/{task_id}/release",
        response_model=TaskRead,
        summary="Put a taken call back in the queue (whoever took it, or a supervisor)",
    )
    async def release(task_id: uuid.UUID, session: Session, who: Who) -> TaskRead:
        require_role(who, "operator", "supervisor")
        task = await service.release(session, task_id=task_id, officer=who)
        return await _with_warning(session, task)

    @api.post("/{task_id}/close", response_model=TaskRead, summary="Close a call with its outcome")
    async def close(task_id: uuid.UUID, body: Close, session: Session, who: Who) -> TaskRead:
        require_role(who, "operator")
        now = datetime.now(UTC)
        task = await service.close(
            session, task_id=task_id, officer=who, outcome=body.outcome, note=body.note, now=now
        )
        await warnings.close_by_desk(
            session,
            warning_id=task.warning_id,
            outcome=body.outcome,
            defrauded=body.defrauded,
            officer=who,
            bridge=bridge,
            now=now,
        )
        return await _with_warning(session, task)

    async def _with_warning(session: AsyncSession, task: DeskTask) -> TaskRead:
        warning = await get_warning(session, task.warning_id)
        assert warning is not None  # a foreign key holds it
        return _read(task, warning)

    return api
