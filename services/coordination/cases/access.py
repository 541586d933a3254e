"""Who may see and act on a case: officers of the owning unit; auditors read every case."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.cases import repository
from services.coordination.cases.models import Case
from services.kit.auth import Officer
from services.kit.errors import Conflict, NotFound


async def readable(
    session: AsyncSession, case_id: uuid.UUID, who: Officer, *, lock: repository.Lock | None = None
) -> Case:
    """The case, if this officer may read it; another unit's case is answered as not found."""
    case = await repository.get(session, case_id, lock=lock)
    if case is None or (who.role != "auditor" and case.unit != who.unit):
        raise NotFound(f"no case {case_id}")
    return case


async def workable(
    session: AsyncSession, case_id: uuid.UUID, who: Officer, *, lock: repository.Lock | None = None
) -> Case:
    """The case, if this officer may act on it now (own unit, case open)."""
    case = await readable(session, case_id, who, lock=lock)
    if case.unit != who.unit:
        raise NotFound(f"no case {case_id}")
    if case.status != "open":
        raise Conflict(f"case {case.case_number} is {case.status}", details={"current_status": case.status})
    return case
