"""Phone-desk rules: who goes into the queue, and how desk staff take and close a call."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.audit import service as audit
from services.kit.auth import Officer
from services.kit.db import after_commit
from services.kit.errors import Conflict, Forbidden, NotFound
from services.notifier import metrics
from services.notifier.desk import repository
from services.notifier.desk.models import DeskTask


async def open_task(session: AsyncSession, *, warning_id: uuid.UUID, reason: str, priority: float) -> None:
    if await repository.open_task(session, warning_id=warning_id, reason=reason, priority=priority):
        after_commit(session, metrics.DESK_TASKS.labels(reason).inc)


async def call_back(session: AsyncSession, *, warning_id: uuid.UUID) -> None:
    """The person answered that they are being defrauded: their call goes to the top of the queue, also
    where the desk had closed it without learning of it (dissuaded, or not reached)."""
    await high_risk(session, warning_id=warning_id, priority=1.0, reopen=True)


async def high_risk(session: AsyncSession, *, warning_id: uuid.UUID, priority: float, reopen: bool) -> None:
    """A high-risk call back at `priority`: a new task, or the warning's task raised to it (one an officer
    holds stays theirs; one queued because nothing got through keeps saying so). A closed one is opened
    again, as high-risk, only where `reopen` (the person said they are being defrauded), and not if the
    desk spoke to the person after the money had gone (it knows, and the case says so). What a closed task
    said stays in the audit log (`desk.closed`). Asked again at the same priority, nothing changes."""
    if await repository.open_task(session, warning_id=warning_id, reason="high_risk", priority=priority):
        after_commit(session, metrics.DESK_TASKS.labels("high_risk").inc)
        return
    task = await repository.for_warning(session, warning_id, for_update=True)
    if task is None:
        return
    if task.status == "closed":
        if not reopen or task.outcome == "reached_too_late":
            return
    elif task.priority >= priority and (task.reason == "high_risk" or not reopen):
        return
    before = task.status
    if task.status == "closed":
        task.status, task.taken_by, task.taken_at = "open", None, None
        task.closed_by, task.closed_at, task.outcome, task.note = None, None, None, None
    if reopen:
        task.reason = "high_risk"
    task.priority = max(task.priority, priority)
    await session.flush()
    action = "desk.reopened" if before == "closed" else "desk.raised"
    await _audit(session, task, actor=audit.SYSTEM, action=action, before=before)
    if before == "closed":  # a call to make again; a raised one is counted as the reason it was opened for
        after_commit(session, metrics.DESK_TASKS.labels("high_risk").inc)


async def escalate(session: AsyncSession, *, now: datetime, answer_timeout_s: float, limit: int = 500) -> int:
    """Hand to the desk every open warning that was not delivered, or not answered in time."""
    undelivered = await repository.escalate_undelivered(session, limit=limit)
    unanswered = await repository.escalate_unanswered(
        session, before=now - timedelta(seconds=answer_timeout_s), limit=limit
    )
    if undelivered:
        after_commit(session, partial(metrics.DESK_TASKS.labels("undelivered").inc, undelivered))
    if unanswered:
        after_commit(session, partial(metrics.DESK_TASKS.labels("unanswered").inc, unanswered))
    return undelivered + unanswered


async def take(session: AsyncSession, *, task_id: uuid.UUID, officer: Officer, now: datetime) -> DeskTask:
    task = await repository.get(session, task_id, for_update=True)
    if task is None:
        raise NotFound(f"no desk task {task_id}")
    if task.status != "open":
        raise Conflict(
            f"the task is {task.status}", details={"current_status": task.status, "taken_by": task.taken_by}
        )
    task.status, task.taken_by, task.taken_at = "taken", officer.subject, now
    await session.flush()
    await _audit(session, task, actor=audit.Actor.of(officer), action="desk.taken", before="open")
    return task


async def release(session: AsyncSession, *, task_id: uuid.UUID, officer: Officer) -> DeskTask:
    """A taken call back in the queue, by whoever took it or a supervisor (their shift ended, their
    browser died): without it, a call taken and left would never be made."""
    task = await repository.get(session, task_id, for_update=True)
    if task is None:
        raise NotFound(f"no desk task {task_id}")
    if task.status != "taken":
        raise Conflict(f"the task is {task.status}", details={"current_status": task.status})
    if task.taken_by != officer.subject and officer.role != "supervisor":
        raise Forbidden("a call taken by someone else is released by a supervisor")
    task.status, task.taken_by, task.taken_at = "open", None, None
    await session.flush()
    await _audit(session, task, actor=audit.Actor.of(officer), action="desk.released", before="taken")
    return task


async def close(
    session: AsyncSession,
    *,
    task_id: uuid.UUID,
    officer: Officer,
    outcome: str,
    note: str | None,
    now: datetime,
) -> DeskTask:
    task = await repository.get(session, task_id, for_update=True)
    if task is None:
        raise NotFound(f"no desk task {task_id}")
    if task.status != "taken":
        raise Conflict(f"the task is {task.status}; take it first", details={"current_status": task.status})
    if task.taken_by != officer.subject:
        raise Forbidden("the task was taken by someone else")
    task.status, task.closed_by, task.closed_at = "closed", officer.subject, now
    task.outcome, task.note = outcome, note
    await session.flush()
    await _audit(session, task, actor=audit.Actor.of(officer), action="desk.closed", before="taken")
    return task


async def _audit(
    session: AsyncSession, task: DeskTask, *, actor: audit.Actor, action: str, before: str
) -> None:
    """Who called whom back and with what outcome; the person is named by their warning, not their phone."""
    await audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="desk_task",
        entity_id=task.id,
        legal_basis=f"citizen warning {task.warning_id}",
        before={"status": before},
        after={
            "status": task.status,
            "warning_id": task.warning_id,
            "reason": task.reason,
            "outcome": task.outcome,
            "note": task.note,
        },
    )
