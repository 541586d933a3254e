"""The timed jobs: lapse holds whose period is over (telling the institution), and escalate
instructions past their acknowledgement or execution deadline (telling supervisors)."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination import metrics
from services.coordination.deadlines import escalation
from services.coordination.instructions import repository, service
from services.coordination.instructions.service import Context
from services.coordination.instructions.states import Status
from services.kit.audit import service as audit
from services.kit.db import after_commit

BATCH = 100


async def expire_holds(session: AsyncSession, *, now: datetime, ctx: Context) -> int:
    """Lapse stop-payments and freezes whose period ended; the institution is told to lift the hold."""
    rows = await repository.due_to_expire(session, now=now, limit=BATCH)
    for row in rows:
        await service.transition(
            session, row, Status.EXPIRED, actor=audit.SYSTEM, action="instruction.expired", now=now
        )
        await service.notify(session, row, notice="expired", ctx=ctx)
        after_commit(session, metrics.EXPIRED.labels(row.kind).inc)
    return len(rows)


async def escalate_overdue(session: AsyncSession, *, now: datetime, ctx: Context) -> int:
    """Mark and announce each instruction once per missed deadline (acknowledgement, then execution)."""
    rows = await repository.newly_overdue(session, now=now, limit=BATCH)
    for row in rows:
        exec_late = row.exec_due_at is not None and row.exec_due_at <= now
        stage, due = ("execution", row.exec_due_at) if exec_late else ("acknowledgement", row.ack_due_at)
        before = service.snapshot(row)
        row.overdue, row.escalated_at = stage, now
        await session.flush()
        await service.record(
            session,
            row,
            actor=audit.SYSTEM,
            action="instruction.escalated",
            before=before,
            after=service.snapshot(row),
        )
        await escalation.announce(
            session, row, stage=stage, due_at=due, now=now, topic_prefix=ctx.topic_prefix
        )
    # What this work's commit leaves overdue: set once it has committed (rolled back, the escalations
    # it counted did not happen).
    after_commit(session, partial(metrics.OVERDUE.set, await repository.overdue_count(session)))
    return len(rows)
