"""The bridge from a person's "I am being defrauded" to the coordination case and a drafted stop-payment,
through the coordination service's public interface; the phone desk calls the person back whatever
else happens."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination import public as coordination
from services.notifier.desk import service as desk
from services.notifier.warnings import repository
from services.notifier.warnings.models import CitizenWarning


class CoordinationCases:
    def __init__(self, *, unit: str) -> None:
        self.unit = unit

    async def defrauded(
        self, session: AsyncSession, *, warning: CitizenWarning, actor: str
    ) -> uuid.UUID | None:
        await desk.call_back(session, warning_id=warning.id)
        report = coordination.CitizenReport(
            warning_id=warning.id,
            alert_ids=await repository.alert_ids(session, warning),
            phone=warning.phone,
            institution=warning.institution,
            account=warning.account,
            payee_institution=warning.payee_institution,
            payee_account=warning.payee_account,
            amount_at_risk=warning.amount_at_risk,
            event_time=warning.event_time,
        )
        return await coordination.citizen_defrauded(
            session, report=report, on_behalf_of=actor, unit=self.unit
        )
