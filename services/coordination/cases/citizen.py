"""A person's "I am being defrauded" (answered to a citizen warning, or told to the phone desk) becomes a
case and drafted stop-payments; a payment that joins the warning afterwards gets its stop-payment too.

The case is opened, or, when police already opened one from one of the warning's alerts, noted. A
stop-payment is drafted as an open money-flow proposal on each account the money went to (every payee of
the warning's alerts), for what was paid to it: an operator issues it by accepting the proposal
(`POST /v1/cases/{id}/proposals/accept`), as with follow-the-money. A further payment to an account grows
its open draft to the whole; once the stop is issued, the instruction sent is not changed (one stop per
account is in force at a time), and a note tells the officer what it does not cover.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.cases import repository
from services.coordination.cases import service as cases
from services.coordination.cases.models import Case
from services.coordination.cases.schemas import MAX_DESTINATIONS, CaseCreate, Destination, Victim
from services.coordination.instructions import repository as instructions_repo
from services.coordination.instructions.models import Instruction
from services.coordination.money import repository as money_repo
from services.coordination.money import service as money
from services.coordination.money.models import FlowTransfer, Proposal
from services.kit.audit import service as audit
from services.kit.auth import Officer

# Who said the person is being defrauded: they did, answering their warning, or the phone desk did.
Word = Literal["answer", "desk"]
# What is new in a report: a word (noted on a case it finds), or a payment that joined the warning after
# one (no news from the person: its stop is drafted).
ReportSource = Literal[Word, "payment"]


@dataclass(frozen=True)
class Payee:
    """An account the person's money went to: how much in all, and when it was last paid."""

    institution: str
    account: str
    amount: Decimal
    at: datetime


@dataclass(frozen=True)
class CitizenReport:
    """What the notifier knows of a warned person who says they are being defrauded."""

    warning_id: uuid.UUID
    alert_ids: list[uuid.UUID]  # the warning's alerts, first the one that raised it
    phone: str
    institution: str | None  # the person's own bank and account, where returned funds go
    account: str | None
    payees: list[Payee]  # where the money went, as far as known: each gets a drafted stop
    amount_at_risk: Decimal | None
    event_time: datetime
    source: ReportSource
    word: Word  # what the case rests on: the report's own word; a payment's, the first said before it


_TITLES = {
    "answer": "Citizen answered a warning: being defrauded",
    "desk": "Phone desk heard from the person: being defrauded",
}
_NOTES = {
    "answer": "The person answered a citizen warning: being defrauded (warning {}).",
    "desk": "The phone desk heard from the person: being defrauded (warning {}).",
}
# A case opened by a payment after the word: when and why it was opened so late.
_OPENED_LATER = " Nothing was at risk then: the payment that followed opened this case."


async def defrauded(session: AsyncSession, *, report: CitizenReport, officer: Officer) -> uuid.UUID | None:
    """Open or note the case and draft the stops its payees lack, however many (asked again, nothing is
    drafted twice); the case's id, or None when there is nothing to open a case on (nothing at risk, no
    amount or zero, and no case yet)."""
    # The warning's own case, opened by an earlier "defrauded" (the desk's) and closed since, is noted
    # again: its number is taken, and the person's word belongs with it.
    existing = await repository.open_case_for_alerts(session, report.alert_ids) or await repository.by_number(
        session, _case_number(report)
    )
    if existing is not None:
        case = await repository.get(session, existing, lock="update")
        assert case is not None
        if report.source != "payment":
            text = _NOTES[report.source].format(report.warning_id)
            await cases.add_note(session, case=case, text=text, officer=officer)
    elif not report.amount_at_risk:
        # Nothing paid yet (no amount, or "0.00"): a case would have no loss to state and nothing to stop.
        # The desk calls the person back meanwhile, the warning keeps their word, and the first payment
        # that joins it opens the case.
        return None
    else:
        case = await cases.open_case(session, spec=await _spec(session, report), officer=officer)
        if report.source == "payment":
            text = _NOTES[report.word].format(report.warning_id) + _OPENED_LATER
            await cases.add_note(session, case=case, text=text, officer=officer)
    if case.status == "open":  # a closed case's officers decide again from the note; nothing is drafted
        await _draft_stop(session, case=case, report=report, officer=officer)
    return case.id


async def _spec(session: AsyncSession, report: CitizenReport) -> CaseCreate:
    assert report.amount_at_risk is not None
    first = report.alert_ids[0] if report.alert_ids else None
    # Linking needs the alert stored here; if it is not there yet, the case is opened as a report.
    alert_known = first is not None and await repository.alert(session, first) is not None
    # The first paid, as many as a case's report lists; the others join its money flow as their stops are
    # drafted (`_draft_stop`), each as these are.
    destinations = [
        Destination(institution_id=p.institution, account=p.account, amount=p.amount, at=p.at)
        for p in _paid(report)[:MAX_DESTINATIONS]
    ]
    return CaseCreate(
        case_number=_case_number(report),
        title=_TITLES[report.word],
        source="alert" if alert_known else "report",
        alert_ids=[first] if alert_known and first is not None else [],
        victim=Victim(phone=report.phone, institution_id=report.institution, account=report.account),
        amount_lost=report.amount_at_risk,
        lost_at=report.event_time,
        destinations=destinations,
    )


def _case_number(report: CitizenReport) -> str:
    return f"WARN-{report.warning_id.hex[:16].upper()}"


def _paid(report: CitizenReport) -> list[Payee]:
    """The payees money went to: one of nothing (an alert of "0.00" counted as a payment) has none to stop."""
    return [p for p in report.payees if p.amount > 0]


async def _draft_stop(session: AsyncSession, *, case: Case, report: CitizenReport, officer: Officer) -> None:
    # The case's flow is read once for all the payees (a report may name hundreds), and kept up to date here
    # as each adds its money and its draft; the victims' accounts are the person's, which no payee adds to.
    victims = await money.case_victims(session, case)
    transfers = await money_repo.transfers(session, case.id)
    proposals = await money_repo.proposals(session, case.id)
    for payee in _paid(report):
        await _draft_stop_on(
            session,
            case=case,
            report=report,
            payee=payee,
            officer=officer,
            flow=(victims, transfers, proposals),
        )


async def _draft_stop_on(
    session: AsyncSession,
    *,
    case: Case,
    report: CitizenReport,
    payee: Payee,
    officer: Officer,
    flow: tuple[money.Victims, list[FlowTransfer], list[Proposal]],
) -> None:
    """Count in the tree what the person paid the account beyond what they reported to it before (once:
    asked again, nothing is new; other victims' payments to it are theirs), and have it stopped: the first
    draft, or the open draft grown to the whole; where a stop was issued (or the draft decided) already,
    the further money is a note for the officer."""
    institution, account = payee.institution, payee.account
    node = await money_repo.account(
        session, case_id=case.id, institution_id=institution, account=account, depth=0, parent_id=None
    )
    # The victims' payments into the account (not a queried mule's): reported without a payer (the case's
    # destinations, this or an earlier report), or listed by a bank from a victim's own account.
    victims, transfers, proposals = flow
    paid = [
        t
        for t in transfers
        if t.to_account_id == node.id and (t.from_account_id is None or t.from_account_id in victims.nodes)
    ]
    known = money.victim_paid(transfers, victims).get(node.id, Decimal(0))
    # The person's own reports to it (the case's destinations, when they are its victim, and earlier reports
    # of theirs). A report whose account no phone ties to a person (`Victims.of`) may be anyone's: it is told
    # beyond the other such reports, and `victim_paid` counts their sum against every person's, not added.
    person = victims.of(report.institution, report.account)
    told = [
        t
        for t in paid
        if t.from_account_id is None and victims.of(t.victim_institution, t.victim_account) == person
    ]
    further = payee.amount - sum((t.amount for t in told), Decimal(0))
    if further > 0:
        ref = f"warning:{report.warning_id}:{institution}:{account}:{payee.amount}"  # the total it makes
        own = (report.institution, report.account) if report.institution and report.account else None
        new = await money_repo.add_transfer(
            session,
            case_id=case.id,
            ref=ref,
            from_id=None,
            to_id=node.id,
            amount=further,
            at=payee.at,
            victim=own,
        )
        # Known already when the reports it was counted against named no victim (recorded before they
        # did): this total of the warning's is in the case.
        if new is not None:
            transfer = await money_repo.transfer(session, new)
            assert transfer is not None
            paid.append(transfer)
            transfers.append(transfer)
    victims_paid = money.victim_paid(transfers, victims)
    whole = victims_paid.get(node.id, Decimal(0))
    await money.grow_loss(
        session, case=case, paid=sum(victims_paid.values(), Decimal(0)), actor=audit.Actor.of(officer)
    )
    active = await instructions_repo.find_active(
        session, case_id=case.id, kind="stop_payment", institution_id=institution, account=account
    )
    drafts = [p for p in proposals if p.transfer_id in {t.id for t in paid}]
    draft = next((p for p in drafts if p.status == "open"), None)
    if active is not None or (drafts and draft is None):
        # Police stop this account already, or decided the draft: a sent instruction is not changed (and a
        # second stop of the account is refused while one is in force), so the officer is told of money
        # the stop does not cover, once: when it reaches the tree.
        asked = (active or drafts[0]).amount or Decimal(0)
        if whole > known and asked < whole:
            decided = drafts[0] if drafts else None
            text = _further_note(report, payee, whole - known, whole, stop=active, decided=decided)
            await cases.add_note(session, case=case, text=text, officer=officer)
    elif draft is not None:
        # The account's drafts (one, or a bank's listing's one per transfer) ask for the whole together.
        others = sum((p.amount for p in drafts if p is not draft and p.status != "dismissed"), Decimal(0))
        if draft.amount + others < whole:
            before = draft.amount
            draft.amount = whole - others
            await session.flush()
            await _audit_draft(
                session, case, report, draft, officer, action="money.stop_draft_grown", before=before
            )
    elif paid:
        draft = Proposal(
            case_id=case.id,
            transfer_id=paid[0].id,
            institution_id=institution,
            account=account,
            amount=whole,
            depth=0,
            status="open",
        )
        await money_repo.add_proposal(session, draft)
        proposals.append(draft)
        await _audit_draft(session, case, report, draft, officer, action="money.stop_drafted", before=None)


def _further_note(
    report: CitizenReport,
    payee: Payee,
    further: Decimal,
    whole: Decimal,
    *,
    stop: Instruction | None,
    decided: Proposal | None,
) -> str:
    said = (
        f"The person paid a further {further} CNY to {payee.institution} {payee.account} (warning"
        f" {report.warning_id}), {whole} CNY in all."
    )
    if stop is not None:
        return (
            f"{said} Its stop-payment {stop.id} ({stop.status}) asks for {stop.amount} CNY and is not changed"
            " once issued; while it is in force a freeze of the account can cover the whole."
        )
    assert decided is not None
    drafted = f"The stop-payment drafted on it for {decided.amount} CNY was {decided.status}"
    return f"{said} {drafted}: nothing is drafted again."


async def _audit_draft(
    session: AsyncSession,
    case: Case,
    report: CitizenReport,
    draft: Proposal,
    officer: Officer,
    *,
    action: str,
    before: Decimal | None,
) -> None:
    await audit.record(
        session,
        actor=audit.Actor.of(officer),
        action=action,
        entity_type="case",
        entity_id=case.id,
        case_id=case.id,
        legal_basis=f"citizen warning {report.warning_id}: the person reports being defrauded",
        before=None if before is None else {"proposal_id": draft.id, "amount": before},
        after={"proposal_id": draft.id, "amount": draft.amount, "institution": draft.institution_id},
    )
