"""Announcing an escalation: marked on the instruction, counted, and queued for the escalations topic."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination import metrics
from services.coordination.delivery import service as delivery
from services.coordination.instructions.models import Instruction
from services.kit.db import after_commit
from streams.schemas.instructions import Escalation


async def announce(
    session: AsyncSession,
    row: Instruction,
    *,
    stage: str,
    due_at: datetime | None,
    now: datetime,
    topic_prefix: str,
) -> bool:
    """False if this stage of the instruction was announced before."""
    message = Escalation(
        escalation_id=f"{row.id}:{stage}",
        instruction_id=row.id,
        case_id=row.case_id,
        unit=row.issued_by_unit,
        institution_id=row.institution_id,
        kind=row.kind,
        stage=stage,
        due_at=due_at,
        detected_at=now,
    )
    if not await delivery.enqueue_escalation(session, escalation=message, topic_prefix=topic_prefix):
        return False
    after_commit(session, metrics.ESCALATIONS.labels(row.kind, stage).inc)
    return True
