"""The accounts that received victims' money, told to the blocklist (which lists them as mule accounts
after a second officer's review): those of a case closed as confirmed fraud, and an account a freeze
was executed on. Through the outbox: sent if and only if the decision commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.cases import repository
from services.coordination.cases.models import Case
from services.coordination.delivery import service as delivery
from services.coordination.instructions import repository as instructions_repo
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.states import HOLD_KINDS, Status
from services.coordination.money import repository as money_repo
from services.kit.auth import Officer
from streams.schemas.blocklist import FraudReceiver
from streams.schemas.instructions import Kind

# Holds that never reached the account, or found no such account: no evidence it received anything.
_NOT_REACHED = frozenset(
    {Status.AWAITING_APPROVAL, Status.DECLINED, Status.CANCELLED, Status.FAILED, Status.ACCOUNT_NOT_FOUND}
)
_IDS = uuid.UUID("5b6e1c1e-3f0a-4c55-9a51-6d2f0c7e4b10")  # namespace of the messages' idempotency keys


async def victim_accounts(session: AsyncSession, case: Case) -> set[tuple[str, str]]:
    """The accounts known to be the case's victims': the one the case names, and those its alerts about a
    payment were paid from, unless the case shows that account receiving its money (a payee of its
    alerts, or found below a root of its money-flow tree: a mule's onward payment alerted too). A query on
    a victim's account (where did the money go?) makes it a root of the tree; it received nothing."""
    return set(await victim_people(session, case))


async def victim_people(session: AsyncSession, case: Case) -> dict[tuple[str, str], tuple[str, str] | None]:
    """The case's victims' accounts (`victim_accounts`), each to the one that stands for its owner: the
    accounts one phone paid from (the case's victim's, its alerts' payers') are one person's. An account no
    phone paid from (the case's victim's, opened without a phone) is None: it may be any victim's."""
    received = set(await repository.alert_payees(session, case.id)) | {
        (a.institution_id, a.account) for a in await money_repo.account_nodes(session, case.id) if a.depth > 0
    }
    paid = [
        (p, (i, a)) for p, i, a in await repository.alert_payers(session, case.id) if (i, a) not in received
    ]
    if case.victim_institution and case.victim_account:
        paid.append((case.victim_phone, (case.victim_institution, case.victim_account)))
    # Accounts joined by a phone, however many steps apart: each stands for itself, or for one before it.
    owner = {account: account for _, account in paid}

    def person(account: tuple[str, str]) -> tuple[str, str]:
        while owner[account] != account:
            account = owner[account]
        return account

    first: dict[str, tuple[str, str]] = {}
    for phone, account in paid:
        if phone is not None:
            one, other = sorted((person(first.setdefault(phone, account)), person(account)))
            owner[other] = one
    phoned = {account for phone, account in paid if phone is not None}
    return {account: person(account) if account in phoned else None for account in owner}


async def receiving_accounts(session: AsyncSession, case: Case) -> list[tuple[str, str]]:
    """The payees of the case's alerts, the accounts of its money-flow tree (the victim's payees and the
    layers found after them) and the accounts its holds (stop-payments, freezes) reached; never the
    victim's own."""
    flow = [(a.institution_id, a.account) for a in await money_repo.accounts(session, case.id)]
    held = [
        (row.institution_id, row.account)
        for row in await instructions_repo.for_case(session, case.id)
        if row.kind in HOLD_KINDS and row.status not in _NOT_REACHED
    ]
    victims = await victim_accounts(session, case)
    found = await repository.alert_payees(session, case.id) + flow + held
    return [a for a in dict.fromkeys(found) if a not in victims]


async def case_confirmed(
    session: AsyncSession, *, case: Case, officer: Officer, at: datetime, topic_prefix: str
) -> int:
    """A case closed as confirmed fraud: each account that received its money goes to the blocklist."""
    accounts = await receiving_accounts(session, case)
    for institution, account in accounts:
        receiver = FraudReceiver(
            message_id=str(uuid.uuid5(_IDS, f"case/{case.id}/{institution}/{account}")),
            source="case",
            institution=institution,
            account=account,
            case_id=case.id,
            case_number=case.case_number,
            decided_by=officer.subject,
            role=officer.role,
            unit=officer.unit,
            decided_at=at,
        )
        await delivery.enqueue_receiver(session, receiver=receiver, topic_prefix=topic_prefix)
    return len(accounts)


async def freeze_executed(
    session: AsyncSession, *, row: Instruction, at: datetime, topic_prefix: str
) -> None:
    """A freeze was executed on an account: it goes to the blocklist, unless it is the victim's (frozen,
    say, to keep a scammer who controls it from moving the rest)."""
    case = await repository.get(session, row.case_id)
    if case is not None and (row.institution_id, row.account) in await victim_accounts(session, case):
        return
    receiver = FraudReceiver(
        message_id=str(uuid.uuid5(_IDS, f"freeze/{row.id}")),
        source=Kind.FREEZE,
        institution=row.institution_id,
        account=row.account,
        case_id=row.case_id,
        case_number=row.case_number,
        # A freeze is approved by a supervisor other than the issuer: theirs is the decision.
        decided_by=row.approved_by or row.issued_by,
        role="supervisor" if row.approved_by else "operator",
        unit=row.issued_by_unit,
        decided_at=at,
    )
    await delivery.enqueue_receiver(session, receiver=receiver, topic_prefix=topic_prefix)
