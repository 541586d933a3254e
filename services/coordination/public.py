"""What other services may ask of the coordination service. Its tables and modules are its own: the
notifier, the blocklist, the simulated banks and the training tools call these functions (in their own
unit of work, on the shared database) and import nothing else from `services.coordination`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.cases import citizen
from services.coordination.cases import repository as cases_repo
from services.coordination.cases.citizen import CitizenReport, Payee, ReportSource, Word
from services.coordination.cases.repository import AlertWithCases, LinkedCase
from services.coordination.delivery import signing
from services.kit.auth import Officer

__all__ = [
    "AlertWithCases",
    "CaseSummary",
    "CitizenReport",
    "LinkedCase",
    "Payee",
    "ReportSource",
    "Word",
    "alerts_with_cases",
    "case_summary",
    "citizen_defrauded",
    "verify_webhook",
]


@dataclass(frozen=True)
class CaseSummary:
    id: uuid.UUID
    case_number: str
    unit: str
    status: str
    outcome: str | None


async def case_summary(session: AsyncSession, case_id: uuid.UUID) -> CaseSummary | None:
    """A case's identity and state, or None if there is no such case."""
    case = await cases_repo.get(session, case_id)
    if case is None:
        return None
    return CaseSummary(case.id, case.case_number, case.unit, case.status, case.outcome)


async def citizen_defrauded(
    session: AsyncSession, *, report: CitizenReport, on_behalf_of: str, unit: str
) -> uuid.UUID | None:
    """A warned person says they are being defrauded: open (or note) the case owned by `unit` and draft
    a stop-payment on each account the money went to. The audit trail names `notifier:<on_behalf_of>`
    (the citizen or the desk officer) as the actor. Returns the case id, or None when there is no case
    to open (no amount at risk)."""
    officer = Officer(subject=f"notifier:{on_behalf_of}", unit=unit, role="operator")
    return await citizen.defrauded(session, report=report, officer=officer)


async def alerts_with_cases(
    session: AsyncSession, *, since: datetime | None = None, until: datetime | None = None
) -> list[AlertWithCases]:
    """Alerts created in [since, until) with their triage status, model input and linked cases'
    outcomes: the officers' decisions, for training labels. No personal data."""
    return await cases_repo.alerts_with_cases(session, since=since, until=until)


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: float = 300) -> bool:
    """Whether an instruction webhook carries a valid signature by the institution's secret, made
    within `tolerance_s` (what an institution's receiver checks before acting)."""
    return signing.verify(secret, headers, body, tolerance_s=tolerance_s)
