"""Accepting proposals in one action: a stop-payment (and a query, for the next layer) per account."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.cases.models import Case
from services.coordination.instructions import repository as instructions_repo
from services.coordination.instructions import service as instructions
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.schemas import InstructionCreate
from services.coordination.money import repository, service
from services.coordination.money.models import Proposal
from services.kit.auth import Officer
from services.kit.errors import Conflict


async def accept(
    session: AsyncSession,
    *,
    case: Case,
    officer: Officer,
    proposal_ids: Sequence[int] | None,
    follow_with_query: bool,
    ctx: instructions.Context,
) -> list[Instruction]:
    """Issue the proposed stop-payments, one per account for the sum of its proposals (and a query, for
    the next layer); an account already stopped in this case is not stopped twice."""
    chosen = await repository.proposals(session, case.id, ids=proposal_ids, for_update=True)
    if proposal_ids is not None and len(chosen) != len(set(proposal_ids)):
        raise Conflict("some proposals are not in this case")
    chosen = [p for p in chosen if p.status == "open"] if proposal_ids is None else chosen
    decided = [p for p in chosen if p.status != "open"]
    if decided:
        raise Conflict(
            f"proposal {decided[0].id} is {decided[0].status}", details={"current_status": decided[0].status}
        )
    # One stop-payment and one query per account: a mule that split its payment to the next account in
    # two has one proposal per transfer, and stopping the first's amount would leave the second's free.
    accounts: dict[tuple[str, str], list[Proposal]] = {}
    for p in chosen:
        accounts.setdefault((p.institution_id, p.account), []).append(p)
    issued: list[Instruction] = []
    for (institution, account), group in accounts.items():
        depth = min(p.depth for p in group)
        active = await instructions_repo.find_active(
            session, case_id=case.id, kind="stop_payment", institution_id=institution, account=account
        )
        if active is None:
            spec = InstructionCreate(
                kind="stop_payment",
                institution_id=institution,
                account=account,
                amount=sum((p.amount for p in group), Decimal(0)),
                reason=f"follow the money: layer {depth}",
            )
            issued.append(await instructions.issue(session, case=case, officer=officer, spec=spec, ctx=ctx))
        if follow_with_query:
            transfers = [await repository.transfer(session, p.transfer_id) for p in group]
            times = [t.at for t in transfers if t is not None]
            query = InstructionCreate(
                kind="query",
                institution_id=institution,
                account=account,
                since=min(times) if times else None,
                reason=f"follow the money: layer {depth}",
            )
            issued.append(await instructions.issue(session, case=case, officer=officer, spec=query, ctx=ctx))
    await service.decide(session, chosen, by=officer.subject, status="accepted")
    return issued
