"""Follow the money: grow the case's tree from the victim's report and from query answers, propose
next-hop stop-payments above the threshold (to the configured depth), accept them in one action, and
reconcile amounts per account and for the case."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.cases import receivers
from services.coordination.cases import repository as cases_repo
from services.coordination.cases.models import Case
from services.coordination.instructions.models import Instruction
from services.coordination.money import repository
from services.coordination.money.models import FlowTransfer, Proposal
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


@dataclass(frozen=True)
class Victims:
    """The case's victims as its money flow meets them: a victim known as a person stands for all their own
    accounts (one phone's, as `receivers.victim_people` ties them), named by one of them."""

    # a victim's own account's node → the person (None: no phone ties it to one)
    nodes: dict[int, tuple[str, str] | None] = field(default_factory=dict)
    # own account → the person (None: no phone ties it to one)
    people: dict[tuple[str, str], tuple[str, str] | None] = field(default_factory=dict)

    def of(self, institution: str | None, account: str | None) -> tuple[str, str] | None:
        """The person whose payment a report naming this own account (or a bank listing from it) tells;
        None when no phone ties the account to one (it names none, the case does not know it, or no phone
        paid from it): it may be any victim's, the same person's as another account's."""
        if institution is None or account is None:
            return None
        return self.people.get((institution, account))


async def case_victims(session: AsyncSession, case: Case) -> Victims:
    """The case's victims, and the tree's nodes of their own accounts (queried: where did the money go?)."""
    people = await receivers.victim_people(session, case)
    nodes = await repository.account_nodes(session, case.id)
    return Victims(
        nodes={n.id: people[key] for n in nodes if (key := (n.institution_id, n.account)) in people},
        people=people,
    )


def victim_paid(
    transfers: Sequence[FlowTransfer | repository.Payment], victims: Victims
) -> dict[int, Decimal]:
    """Per account, the victims' own payments into it, counted once. They are known two ways: reported,
    without a payer (the case's destinations, a warned person's payments), and listed by a bank from a
    victim's own account (each with the bank's transfer id). Nothing names a payment alike in both (an
    alert's event id is not the bank's transfer id, and a report gives the total paid to an account where
    the bank lists each transfer), so the two are reconciled per person and account: the larger of what the
    person reported paying into it and what banks list from their own accounts counts, and the sums of
    people known to be different (by their phones) add up. A payment told by an account no phone ties to a
    person may be any victim's, so the account counts the larger of those reports, of all the listings
    (each a transfer of its own) and of the people's sum: never a payment twice."""
    reported: dict[tuple[tuple[str, str], int], Decimal] = defaultdict(lambda: ZERO)
    listed: dict[tuple[tuple[str, str], int], Decimal] = defaultdict(lambda: ZERO)
    unnamed: dict[int, Decimal] = defaultdict(lambda: ZERO)
    all_listed: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for t in transfers:
        if t.from_account_id is None:
            victim = victims.of(t.victim_institution, t.victim_account)
            if victim is None:
                unnamed[t.to_account_id] += t.amount
            else:
                reported[(victim, t.to_account_id)] += t.amount
        elif t.from_account_id in victims.nodes:
            all_listed[t.to_account_id] += t.amount
            if (victim := victims.nodes[t.from_account_id]) is not None:
                listed[(victim, t.to_account_id)] += t.amount
    named: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for key in reported.keys() | listed.keys():
        named[key[1]] += max(reported[key], listed[key])
    accounts = named.keys() | unnamed.keys() | all_listed.keys()
    return {n: max(named[n], unnamed[n], all_listed[n]) for n in accounts}


def received_by_account(
    transfers: Sequence[FlowTransfer | repository.Payment], victims: Victims
) -> defaultdict[int, Decimal]:
    """Per account, what the flow shows it receiving: the victims' payments (`victim_paid`) and the
    transfers listed out of the accounts past them."""
    received: defaultdict[int, Decimal] = defaultdict(lambda: ZERO, victim_paid(transfers, victims))
    for t in transfers:
        if t.from_account_id is not None and t.from_account_id not in victims.nodes:
            received[t.to_account_id] += t.amount
    return received


async def grow_loss(session: AsyncSession, *, case: Case, paid: Decimal, actor: audit.Actor) -> None:
    """The case's loss grows to what the flow shows the victims paying in all (`paid`, by `victim_paid`)
    when that is more: a warned person's further payment, one their bank lists. Never less: a loss stated
    at opening may count money the flow holds later, or never (the payees past a report's first ones join
    it as their stops are drafted). The caller holds the case's row locked."""
    if paid <= case.amount_lost:
        return
    before = case.amount_lost
    case.amount_lost = paid
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="case.loss_grown",
        entity_type="case",
        entity_id=case.id,
        case_id=case.id,
        legal_basis=f"case {case.case_number}: the victims' payments known to it grew",
        before={"amount_lost": before},
        after={"amount_lost": case.amount_lost},
    )


async def seed_from_report(
    session: AsyncSession, *, case: Case, destinations: Sequence[tuple[str, str, Decimal, datetime]]
) -> None:
    """The accounts the victim paid into are the roots of the tree (depth 0); the payments are the case's
    victim's, named by their own account when the case names it."""
    roots = await repository.nodes(
        session,
        case_id=case.id,
        accounts=[(i, a) for i, a, _, _ in destinations],
        depth=0,
        parent_id=None,
    )
    paid = [
        (f"report:{n}", roots[(i, a)].id, amount, at) for n, (i, a, amount, at) in enumerate(destinations)
    ]
    institution, account = case.victim_institution, case.victim_account
    victim = (institution, account) if institution and account else None
    await repository.add_transfers(session, case_id=case.id, from_id=None, transfers=paid, victim=victim)


async def queries_a_victim(session: AsyncSession, case: Case, query: Instruction) -> bool:
    """Whether the query is of one of the case's victims' accounts (`receivers.victim_accounts`): its
    answer lists the victims' payments, and may grow the case's loss. Only a change of the case (an alert
    linked to it, for update) makes an account a victim's."""
    return (query.institution_id, query.account) in await receivers.victim_accounts(session, case)


async def record_query_answer(
    session: AsyncSession,
    *,
    instruction: Instruction,
    result: QueryResult,
    policy: CoordinationSettings,
    actor: audit.Actor,
) -> None:
    """Add the queried account's outgoing transfers to the tree; propose stops on the large ones. A few
    statements whatever the answer's size (it may list thousands of transfers, and the answers of every
    institution on the same consumer wait for it), and no mapped object per transfer: the answered
    instruction stays locked to the commit, and a relay marking it delivered waits for it. A victim's own
    account lists the victim's payments: what the case knew of them already (reported, and drafted) is
    not proposed again (`victim_paid`)."""
    case = await cases_repo.get(session, instruction.case_id)
    assert case is not None
    # Only a victim's own account lists the victim's payments (a few statements more, then); the case's
    # loss may grow with them, so its row is locked before the tree, in the order the citizen's drafts take
    # (the answer took it already, before its instruction, having found the account a victim's:
    # `answers._locked`).
    victim = await queries_a_victim(session, case, instruction)
    if victim:
        case = await cases_repo.get(session, instruction.case_id, lock="update")
        assert case is not None
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
        accounts=[(t.to_institution, t.to_account) for t in result.transfers],
        depth=source.depth + 1,
        parent_id=source.id,
    )
    refs = [
        transfer_ref(instruction.institution_id, instruction.account, t.transfer_id) for t in result.transfers
    ]
    victims = await case_victims(session, case)
    before = victim_paid(await repository.payments(session, case.id), victims) if victim else {}
    # Past the victims' own accounts, the stops proposed on an account's transfers stay within what the
    # flow shows it receiving: its listing may carry other victims' money, or sums it never held. A
    # transfer after a hold took effect there did not carry what the hold kept (before it, it may have:
    # a hold fills from whatever the account has left). An account the flow shows receiving nothing
    # (queried on a lead) has no such bound.
    room: Decimal | None = None
    holds: list[tuple[datetime, Decimal]] = []
    if not victim:
        into = await repository.payments(session, case.id, into=source.id)
        if received := received_by_account(into, victims)[source.id]:
            room = received - await repository.proposed_from(session, case.id, source.id)
            holds = await repository.holds_in(session, case.id, source.institution_id, source.account)
    new = await repository.add_transfers(
        session,
        case_id=instruction.case_id,
        from_id=source.id,
        transfers=[
            (ref, children[(t.to_institution, t.to_account)].id, t.amount, t.at)
            for ref, t in zip(refs, result.transfers, strict=True)
        ],
    )
    # Per account, what is new to the case: a payment its victim reported already is not new money.
    unknown: dict[int, Decimal] = defaultdict(lambda: ZERO)
    if victim:
        after = victim_paid(await repository.payments(session, case.id), victims)
        unknown.update({n: paid - before.get(n, ZERO) for n, paid in after.items()})
        await grow_loss(session, case=case, paid=sum(after.values(), ZERO), actor=actor)
    proposed: list[repository.NewProposal] = []
    bounded = 0  # transfers proposed for less than they carried, or not at all, for the account's bound
    # Oldest first: the money an account received leaves in the transfers after it, whatever order the
    # bank lists them in.
    for ref, t in sorted(zip(refs, result.transfers, strict=True), key=lambda pair: pair[1].at):
        child = children[(t.to_institution, t.to_account)]
        # A transfer known already (a later answer listing it again) was proposed, or not, then.
        if ref not in new or t.amount < policy.follow_threshold or child.depth > policy.follow_max_depth:
            continue
        amount = t.amount
        if victim:
            amount = min(amount, unknown[child.id])
            unknown[child.id] -= amount
        elif room is not None:
            amount = min(amount, room - sum((held for at, held in holds if at <= t.at), ZERO))
            bounded += amount < t.amount
            if amount < policy.follow_threshold:
                continue  # what is left of the bound is too small a stop to propose
            room -= amount
        if amount <= 0:
            continue
        proposed.append(repository.NewProposal(new[ref], t.to_institution, t.to_account, amount, child.depth))
    await repository.add_proposals(session, case_id=instruction.case_id, proposals=proposed)
    await audit.record(
        session,
        actor=actor,
        action="money.query_answered",
        entity_type="instruction",
        entity_id=instruction.id,
        case_id=instruction.case_id,
        legal_basis=f"case {instruction.case_number}",
        after={"transfers": len(result.transfers), "proposals": len(proposed), "bounded": bounded},
    )


async def flow(session: AsyncSession, *, case: Case) -> FlowView:
    """The tree with, per account, received / stopped / frozen / returned / gone, and the case totals."""
    nodes = await repository.accounts(session, case.id)
    transfers = await repository.transfers(session, case.id)
    victims = await case_victims(session, case)
    received = received_by_account(transfers, victims)
    gone: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for t in transfers:
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
    # Holds along the flow may keep more than the case lost (a collection account's other victims' money,
    # or a hop stopped before its source was): the case recovers its loss at most.
    recovered = min(stopped + frozen + returned, case.amount_lost)
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
