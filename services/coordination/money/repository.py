"""SQL of the money-flow tree: accounts, transfers between them, proposals, and the held amounts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    DateTime,
    Integer,
    Numeric,
    String,
    TableValuedAlias,
    Uuid,
    bindparam,
    column,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from services.coordination.cases.models import Case
from services.coordination.instructions.models import Instruction
from services.coordination.instructions.repository import KEEPS_MONEY
from services.coordination.money.models import FlowAccount, FlowTransfer, Proposal


class Node(NamedTuple):
    """A tree node as a write needs it: plain values, not a mapped object (an answer makes thousands, and
    building objects for them would hold the answered instruction's lock for seconds)."""

    id: int
    institution_id: str
    account: str
    depth: int


class Payment(NamedTuple):
    """A transfer into an account as the victims' reconciliation needs it (`service.victim_paid`)."""

    from_account_id: int | None
    to_account_id: int
    amount: Decimal
    victim_institution: str | None
    victim_account: str | None


class NewProposal(NamedTuple):
    """A next-hop stop to propose (`add_proposals`)."""

    transfer_id: int
    institution_id: str
    account: str
    amount: Decimal
    depth: int


_NODE = (FlowAccount.id, FlowAccount.institution_id, FlowAccount.account, FlowAccount.depth)


async def lock_tree(session: AsyncSession, case_id: uuid.UUID) -> None:
    """Serialise, to the end of the transaction, the writes to a case's tree. Two answers of one case (two
    banks' queries, each listing the other's account) make their new nodes in other orders: each would
    hold a node the other is making and wait for one the other holds (a deadlock). So every write of
    nodes takes this lock first, after the answered instruction's row and before the audit chain's.
    The case's row before it, for key share (as a node's foreign key would lock it, later): the order of
    the locks is written in cases.repository."""
    case = select(Case.id).where(Case.id == case_id).with_for_update(read=True, key_share=True)
    await session.execute(case)
    key = f"flow/{case_id}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


async def account(
    session: AsyncSession,
    *,
    case_id: uuid.UUID,
    institution_id: str,
    account: str,
    depth: int,
    parent_id: int | None,
) -> Node:
    """The tree node of this account, made on first sight (first parent and depth win)."""
    key = (institution_id, account)
    return (await nodes(session, case_id=case_id, accounts=[key], depth=depth, parent_id=parent_id))[key]


async def nodes(
    session: AsyncSession,
    *,
    case_id: uuid.UUID,
    accounts: Sequence[tuple[str, str]],
    depth: int,
    parent_id: int | None,
) -> dict[tuple[str, str], Node]:
    """The tree nodes of these (institution, account)s, each made on first sight (first parent and depth
    win) in the order given: one statement however many there are (a query answer lists thousands).

    One insert that returns the nodes found as well as those made (a conflict "updates" a node to what it
    is), not an insert and then a join of the table with the given rows: PostgreSQL plans a prepared
    statement once for any parameters after a few uses, and that generic plan, expecting a case to have a
    node or two and the arrays ten rows, joined them by a nested loop (an answer of 10,000 transfers
    compared 10^8 pairs, 17 s, past the statement timeout: the answer was refused on every try)."""
    await lock_tree(session, case_id)
    accounts = list(dict.fromkeys(accounts))  # each once: a statement makes or finds a node once
    given = _rows(
        [("institution_id", String(40)), ("account", String(34))],
        [[i for i, _ in accounts], [a for _, a in accounts]],
    )
    stmt = (
        insert(FlowAccount)
        .from_select(
            ["case_id", "institution_id", "account", "depth", "parent_id"],
            select(
                literal(case_id, Uuid),
                given.c.institution_id,
                given.c.account,
                literal(depth, Integer),
                literal(parent_id, Integer),
            ).order_by(given.c.n),
        )
        .on_conflict_do_update(
            index_elements=["case_id", "institution_id", "account"], set_={"depth": FlowAccount.depth}
        )
        .returning(*_NODE)
    )
    return {(n.institution_id, n.account): n for n in map(Node._make, (await session.execute(stmt)).all())}


async def add_transfer(
    session: AsyncSession,
    *,
    case_id: uuid.UUID,
    ref: str,
    from_id: int | None,
    to_id: int,
    amount: Decimal,
    at: datetime,
    victim: tuple[str, str] | None = None,
) -> int | None:
    """Record a transfer once (by ref); None when it was known already."""
    new = await add_transfers(
        session, case_id=case_id, from_id=from_id, transfers=[(ref, to_id, amount, at)], victim=victim
    )
    return new.get(ref)


async def add_transfers(
    session: AsyncSession,
    *,
    case_id: uuid.UUID,
    from_id: int | None,
    transfers: Sequence[tuple[str, int, Decimal, datetime]],
    victim: tuple[str, str] | None = None,
) -> dict[str, int]:
    """Record transfers (ref, to account, amount, at) out of one account, each once (by ref), in the order
    given, in one statement; the ids of those that were not known already, by ref. A report's (no `from_id`)
    names the victim who paid by their own account (institution, account), when it knows it."""
    victim_institution, victim_account = victim or (None, None)
    given = _rows(
        [
            ("ref", String(140)),
            ("to_account_id", Integer()),
            ("amount", Numeric(15, 2)),
            ("at", DateTime(timezone=True)),
        ],
        [list(column) for column in zip(*transfers, strict=True)] if transfers else [[], [], [], []],
    )
    stmt = (
        insert(FlowTransfer)
        .from_select(
            [
                "case_id",
                "ref",
                "from_account_id",
                "to_account_id",
                "amount",
                "at",
                "victim_institution",
                "victim_account",
            ],
            select(
                literal(case_id, Uuid),
                given.c.ref,
                literal(from_id, Integer),
                given.c.to_account_id,
                given.c.amount,
                given.c.at,
                literal(victim_institution, String(40)),
                literal(victim_account, String(34)),
            ).order_by(given.c.n),
        )
        .on_conflict_do_nothing(index_elements=["case_id", "ref"])
        .returning(FlowTransfer.ref, FlowTransfer.id)
    )
    return {ref: id_ for ref, id_ in (await session.execute(stmt)).all()}


def _rows(columns: Sequence[tuple[str, TypeEngine[Any]]], values: Sequence[list[Any]]) -> TableValuedAlias:
    """Rows given as one array per column (`unnest`), numbered `n` in their order: a statement of one
    parameter per column, whatever the number of rows (a VALUES list takes one per value, and a
    statement takes at most 32,767)."""
    arrays = [bindparam(name, v, type_=ARRAY(t)) for (name, t), v in zip(columns, values, strict=True)]
    shape = [column(name, t) for name, t in columns]
    return func.unnest(*arrays).table_valued(*shape, with_ordinality="n").render_derived()


async def add_proposal(session: AsyncSession, proposal: Proposal) -> None:
    """One proposal, kept as an object by the caller (a citizen's draft, grown later in its session)."""
    session.add(proposal)
    await session.flush()


async def add_proposals(
    session: AsyncSession, *, case_id: uuid.UUID, proposals: Sequence[NewProposal]
) -> None:
    """Open proposals, in one statement however many (an answer may propose thousands: mapped objects
    for them, and their flush, would cost seconds while the answered instruction is locked)."""
    if not proposals:
        return
    given = _rows(
        [
            ("transfer_id", Integer()),
            ("institution_id", String(40)),
            ("account", String(34)),
            ("amount", Numeric(15, 2)),
            ("depth", Integer()),
        ],
        [list(column) for column in zip(*proposals, strict=True)],
    )
    stmt = insert(Proposal).from_select(
        ["case_id", "transfer_id", "institution_id", "account", "amount", "depth", "status"],
        select(
            literal(case_id, Uuid),
            given.c.transfer_id,
            given.c.institution_id,
            given.c.account,
            given.c.amount,
            given.c.depth,
            literal("open", String(16)),
        ).order_by(given.c.n),
    )
    await session.execute(stmt)


async def account_nodes(session: AsyncSession, case_id: uuid.UUID) -> list[Node]:
    """The case's tree nodes as plain values (for a write holding its locks; `accounts` for a view)."""
    stmt = select(*_NODE).where(FlowAccount.case_id == case_id)
    return list(map(Node._make, (await session.execute(stmt)).all()))


async def accounts(session: AsyncSession, case_id: uuid.UUID) -> list[FlowAccount]:
    stmt = (
        select(FlowAccount).where(FlowAccount.case_id == case_id).order_by(FlowAccount.depth, FlowAccount.id)
    )
    return list((await session.execute(stmt)).scalars())


async def transfers(session: AsyncSession, case_id: uuid.UUID) -> list[FlowTransfer]:
    stmt = select(FlowTransfer).where(FlowTransfer.case_id == case_id).order_by(FlowTransfer.id)
    return list((await session.execute(stmt)).scalars())


async def payments(session: AsyncSession, case_id: uuid.UUID, *, into: int | None = None) -> list[Payment]:
    """The case's transfers (`into` one account only) as plain values, for an answer to reconcile while
    it holds its locks."""
    stmt = select(
        FlowTransfer.from_account_id,
        FlowTransfer.to_account_id,
        FlowTransfer.amount,
        FlowTransfer.victim_institution,
        FlowTransfer.victim_account,
    ).where(FlowTransfer.case_id == case_id)
    if into is not None:
        stmt = stmt.where(FlowTransfer.to_account_id == into)
    return [Payment(*row) for row in (await session.execute(stmt)).all()]


async def proposals(
    session: AsyncSession,
    case_id: uuid.UUID,
    *,
    status: str | None = None,
    ids: Sequence[int] | None = None,
    for_update: bool = False,
) -> list[Proposal]:
    stmt = select(Proposal).where(Proposal.case_id == case_id)
    if status is not None:
        stmt = stmt.where(Proposal.status == status)
    if ids is not None:
        stmt = stmt.where(Proposal.id.in_(ids))
    if for_update:
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt.order_by(Proposal.id))).scalars())


async def proposed_from(session: AsyncSession, case_id: uuid.UUID, account_id: int) -> Decimal:
    """What the case's proposals (open, accepted or dismissed) put on transfers out of one account."""
    stmt = (
        select(func.coalesce(func.sum(Proposal.amount), 0))
        .join(FlowTransfer, FlowTransfer.id == Proposal.transfer_id)
        .where(Proposal.case_id == case_id, FlowTransfer.from_account_id == account_id)
    )
    return Decimal((await session.execute(stmt)).scalar_one())


async def transfer(session: AsyncSession, transfer_id: int) -> FlowTransfer | None:
    return await session.get(FlowTransfer, transfer_id)


async def holds_in(
    session: AsyncSession, case_id: uuid.UUID, institution_id: str, account: str
) -> list[tuple[datetime, Decimal]]:
    """The case's holds in force (and returns) in one account: when each was answered, and what it kept."""
    stmt = select(Instruction.answered_at, Instruction.held_amount).where(
        Instruction.case_id == case_id,
        Instruction.institution_id == institution_id,
        Instruction.account == account,
        KEEPS_MONEY,
    )
    rows = (await session.execute(stmt)).all()
    return [(at, held) for at, held in rows if at is not None and held is not None]


async def held_by_account(session: AsyncSession, case_id: uuid.UUID) -> dict[tuple[str, str, str], Decimal]:
    """(kind, institution, account) → amount held now (stop-payment, freeze) or returned (return: as the
    bank stated, in full or in part)."""
    stmt = (
        select(
            Instruction.kind,
            Instruction.institution_id,
            Instruction.account,
            func.sum(Instruction.held_amount),
        )
        .where(Instruction.case_id == case_id, KEEPS_MONEY)
        .group_by(Instruction.kind, Instruction.institution_id, Instruction.account)
    )
    return {(k, i, a): Decimal(v or 0) for k, i, a, v in (await session.execute(stmt)).all()}
