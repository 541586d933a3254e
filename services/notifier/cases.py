"""The bridge from a person's "I am being defrauded" to the coordination case and a drafted stop-payment.

The case is opened (or, when police already opened one from the alert, updated with a note) through
the coordination case service, in the notifier's transaction. The stop-payment is drafted as an open
money-flow proposal on the account the money went to, for the amount at risk: an operator issues it
by accepting the proposal (`POST /v1/cases/{id}/proposals/accept`), as with follow-the-money.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.audit import service as audit
from services.coordination.cases import repository as cases_repo
from services.coordination.cases import service as cases
from services.coordination.cases.schemas import CaseCreate, Destination, Victim
from services.coordination.instructions import repository as instructions_repo
from services.coordination.money import repository as money_repo
from services.coordination.money.models import Proposal
from services.kit.auth import Officer
from services.notifier.desk import service as desk
from services.notifier.warnings import repository
from services.notifier.warnings.models import CitizenWarning


class CoordinationCases:
    def __init__(self, *, unit: str) -> None:
        self.unit = unit

    async def defrauded(
        self, session: AsyncSession, *, warning: CitizenWarning, actor: str
    ) -> uuid.UUID | None:
        # The case service needs an officer; the notifier acts for the anti-fraud centre on the
        # person's own answer, and the audit trail names it so ("notifier:citizen" or the desk officer).
        officer = Officer(subject=f"notifier:{actor}", unit=self.unit, role="operator")
        # The desk calls every person who says they are being defrauded, whatever else happens.
        await desk.open_task(session, warning_id=warning.id, reason="high_risk", priority=1.0)
        existing = await repository.open_case_for(session, warning.id)
        if existing is not None:
            case = await cases_repo.get(session, existing, for_update=True)
            assert case is not None
            text = f"The person answered a citizen warning: being defrauded (warning {warning.id})."
            await cases.add_note(session, case=case, text=text, officer=officer)
        elif warning.amount_at_risk is None:
            return None  # nothing to stop: the desk call opens the case by hand
        else:
            case = await cases.open_case(
                session, spec=self._spec(warning, await self._alert_known(session, warning)), officer=officer
            )
        await self._draft_stop(session, case_id=case.id, warning=warning, officer=officer)
        return case.id

    async def _alert_known(self, session: AsyncSession, warning: CitizenWarning) -> bool:
        return await cases_repo.alert(session, warning.first_alert_id) is not None

    def _spec(self, warning: CitizenWarning, alert_known: bool) -> CaseCreate:
        assert warning.amount_at_risk is not None
        destinations = []
        if warning.payee_account and warning.payee_institution:
            destinations.append(
                Destination(
                    institution_id=warning.payee_institution,
                    account=warning.payee_account,
                    amount=warning.amount_at_risk,
                    at=warning.event_time,
                )
            )
        return CaseCreate(
            case_number=f"WARN-{warning.id.hex[:16].upper()}",
            title="Citizen answered a warning: being defrauded",
            # Linking needs the alert stored by coordination; if it is not there yet, it is a report.
            source="alert" if alert_known else "report",
            alert_ids=[warning.first_alert_id] if alert_known else [],
            victim=Victim(phone=warning.phone, institution_id=warning.institution, account=warning.account),
            amount_lost=warning.amount_at_risk,
            lost_at=warning.event_time,
            destinations=destinations,
        )

    async def _draft_stop(
        self, session: AsyncSession, *, case_id: uuid.UUID, warning: CitizenWarning, officer: Officer
    ) -> None:
        if not (warning.payee_account and warning.payee_institution and warning.amount_at_risk):
            return
        active = await instructions_repo.find_active(
            session,
            case_id=case_id,
            kind="stop_payment",
            institution_id=warning.payee_institution,
            account=warning.payee_account,
        )
        if active is not None:
            return  # police stop this account already: a draft would only ask for it twice
        node = await money_repo.account(
            session,
            case_id=case_id,
            institution_id=warning.payee_institution,
            account=warning.payee_account,
            depth=0,
            parent_id=None,
        )
        # The victim's payment may be in the tree already (the case was opened from the alert with
        # it as a destination): draft on that transfer rather than count the same money twice.
        known = [t for t in await money_repo.transfers(session, case_id) if t.to_account_id == node.id]
        if known:
            drafted = {p.transfer_id for p in await money_repo.proposals(session, case_id)}
            if known[0].id in drafted:
                return  # drafted already (the desk and the person both said so)
            transfer_id: int | None = known[0].id
        else:
            transfer_id = await money_repo.add_transfer(
                session,
                case_id=case_id,
                ref=f"warning:{warning.id}",
                from_id=None,
                to_id=node.id,
                amount=warning.amount_at_risk,
                at=warning.event_time,
            )
        if transfer_id is None:
            return
        proposal = Proposal(
            case_id=case_id,
            transfer_id=transfer_id,
            institution_id=warning.payee_institution,
            account=warning.payee_account,
            amount=warning.amount_at_risk,
            depth=0,
            status="open",
        )
        await money_repo.add_proposal(session, proposal)
        await audit.record(
            session,
            actor=audit.Actor.of(officer),
            action="money.stop_drafted",
            entity_type="case",
            entity_id=case_id,
            case_id=case_id,
            legal_basis=f"citizen warning {warning.id}: the person reports being defrauded",
            after={
                "proposal_id": proposal.id,
                "amount": warning.amount_at_risk,
                "institution": warning.payee_institution,
            },
        )
