"""The bridge from a person's "I am being defrauded" to the coordination case and a drafted stop-payment,
through the coordination service's public interface, in the caller's transaction; the phone desk calls the
person back whatever else happens. A payment that joins the warning afterwards is drafted on the same way."""

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
        self, session: AsyncSession, *, warning: CitizenWarning, actor: str, source: coordination.ReportSource
    ) -> uuid.UUID | None:
        if source != "payment":  # the person's word; a payment joining is scored for the desk as any alert
            await desk.call_back(session, warning_id=warning.id)
        report = coordination.CitizenReport(
            warning_id=warning.id,
            alert_ids=await repository.alert_ids(session, warning),
            phone=warning.phone,
            institution=warning.institution,
            account=warning.account,
            payees=await _payees(session, warning),
            amount_at_risk=warning.amount_at_risk,
            event_time=warning.event_time,
            source=source,
            word=source if source != "payment" else _first_word(warning),
        )
        return await coordination.citizen_defrauded(
            session, report=report, on_behalf_of=actor, unit=self.unit
        )


def _first_word(warning: CitizenWarning) -> coordination.Word:
    """Who first said the person is being defrauded: a payment's case rests on it (the desk's word may
    come with no answer, or before it)."""
    answered = warning.answered_at if warning.answer == "defrauded" else None
    desk = warning.desk_defrauded_at
    return "desk" if desk is not None and (answered is None or desk < answered) else "answer"


async def _payees(session: AsyncSession, warning: CitizenWarning) -> list[coordination.Payee]:
    """Every account the warning's alerts saw paid; a warning from before payments were kept, its own."""
    paid = [coordination.Payee(*row) for row in await repository.payees(session, warning.id)]
    if paid or not (warning.payee_institution and warning.payee_account and warning.amount_at_risk):
        return paid
    return [
        coordination.Payee(
            warning.payee_institution, warning.payee_account, warning.amount_at_risk, warning.event_time
        )
    ]
