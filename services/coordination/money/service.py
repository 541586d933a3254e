"""Follow the money: grow the case's tree from the victim's report and from query answers, propose
next-hop stop-payments above the threshold (to the configured depth), accept them in one action, and
reconcile amounts per account and for the case."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.cases.models import Case
from services.coordination.instructions.models import Instruction
from services.coordination.money import repository
from services.coordination.money.models import Proposal
from services.coordination.money.schemas import FlowNode, FlowTotals, FlowView
from services.coordination.settings import CoordinationSettings
from services.kit.audit import service as audit
from streams.schemas.instructions import QueryResult

ZERO = Decimal("0.00")


def transfer_ref(institution_id: str, account: str, transfer_id: str) -> str:
    """A transfer out of a queried account, named once in its case: a bank's transfer ids need not be
    unique across its accounts, so the account is part of the name. (A report's are `report:<n>`: one
    colon, where these have two at least.)"""
    return f"{institution_id}:{account}:{transfer_id}"


async def seed_from_report(
    session: AsyncSession, *, case: Case, destinations: Sequence[tuple[str, str, Decimal, datetime]]
) -> None:
    """The accounts the victim paid into are the roots of the tree (depth 0)."""
    roots = await repository.nodes(
        session,
        case_id=case.id,
        accounts=list(dict.fromkeys((i, a) for i, a, _, _ in destinations)),
        depth=0,
        parent_id=None,
    )
    paid = [
        (f"report:{n}", roots[(i, a)].id, amount, at) for n, (i, a, amount, at) in enumerate(destinations)
    ]
    await repository.add_transfers(session, case_id=case.id, from_id=None, transfers=paid)


async def record_query_answer(
    session: AsyncSession,
    *,
    instruction: Instruction,
    result: QueryResult,
    policy: CoordinationSettings,
    actor: audit.Actor,
) -> list[Proposal]:
    """Add the queried account's outgoing transfers to the tree; propose stops on the large ones. A few
    statements whatever the answer's size (it may list thousands of transfers, and the answers of every
    institution on the same consumer wait for it)."""
    source = await repository.account(
        session,
        case_id=instruction.case_id,
        institution_id=instruction.institution_id,
        account=instruction.account,
        depth=0,
        parent_id=None,
    )
    children = await repository.nodes(
        session,
        case_id=instruction.case_id,
        accounts=list(dict.fromkeys((t.to_institution, t.to_account) for t in result.transfers)),
        depth=source.depth + 1,
        parent_id=source.id,
    )
    refs = [
        transfer_ref(instruction.institution_id, instruction.account, t.transfer_id) for t in result.transfers
    ]
    new = await repository.add_transfers(
        session,
        case_id=instruction.case_id,
        from_id=source.id,
        transfers=[
            (ref, children[(t.to_institution, t.to_account)].id, t.amount, t.at)
            for ref, t in zip(refs, result.transfers, strict=True)
        ],
    )
    proposed: list[Proposal] = []
    for ref, t in zip(refs, result.transfers, strict=True):
        child = children[(t.to_institution, t.to_account)]
        # A transfer known already (a later answer listing it again) was proposed, or not, then.
        if ref not in new or t.amount < policy.follow_threshold or child.depth > policy.follow_max_depth:
            continue
        proposed.append(
            Proposal(
                case_id=instruction.case_id,
                transfer_id=new[ref],
                institution_id=t.to_institution,
                account=t.to_account,
                amount=t.amount,
                depth=child.depth,
                status="open",
            )
        )
    await repository.add_proposals(session, proposed)
    await audit.record(
        session,
        actor=actor,
        action="money.query_answered",
        entity_type="instruction",
        entity_id=instruction.id,
        case_id=instruction.case_id,
        legal_basis=f"case {instruction.case_number}",
        after={"transfers": len(result.transfers), "proposals": len(proposed)},
    )
    return proposed


async def flow(session: AsyncSession, *, case: Case) -> FlowView:
    """The tree with, per account, received / stopped / frozen / returned / gone, and the case totals."""
    nodes = await repository.accounts(session, case.id)
    received: dict[int, Decimal] = defaultdict(lambda: ZERO)
    gone: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for t in await repository.transfers(session, case.id):
        received[t.to_account_id] += t.amount
        if t.from_account_id is not None:
            gone[t.from_account_id] += t.amount
    held = await repository.held_by_account(session, case.id)
    out: list[FlowNode] = []
    for n in nodes:
        key = (n.institution_id, n.account)
        out.append(
            FlowNode(
                id=n.id,
                institution_id=n.institution_id,
                account=n.account,
                depth=n.depth,
                parent_id=n.parent_id,
                received=received[n.id],
                stopped=held.get(("stop_payment", *key), ZERO),
                frozen=held.get(("freeze", *key), ZERO),
                returned=held.get(("return_funds", *key), ZERO),
                gone=gone[n.id],
            )
        )
    stopped = sum((v for (k, *_), v in held.items() if k == "stop_payment"), ZERO)
    frozen = sum((v for (k, *_), v in held.items() if k == "freeze"), ZERO)
    returned = sum((v for (k, *_), v in held.items() if k == "return_funds"), ZERO)
    recovered = stopped + frozen + returned
    totals = FlowTotals(
        lost=case.amount_lost,
        stopped=stopped,
        frozen=frozen,
        returned=returned,
        recovered=recovered,
        outstanding=case.amount_lost - recovered,
    )
    return FlowView(nodes=out, totals=totals)


async def decide(session: AsyncSession, proposals: Sequence[Proposal], *, by: str, status: str) -> None:
    now = datetime.now(UTC)
    for p in proposals:
        p.status, p.decided_by, p.decided_at = status, by, now
    await session.flush()
