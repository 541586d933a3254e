"""The simulated banks' books, in memory: balances, holds, and transfers out. Money that is not held
moves on to another account after a while, layer after layer, as mule networks do; what is held stays."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from streams.schemas.instructions import Holder, InstructionMessage, OutgoingTransfer, QueryResult

CENT = Decimal("0.01")
# Money a freeze held and its release let go is kept this long for the freeze's return (冻结资金返还):
# the police release frozen funds to return them, and the bank pays them back instead of letting the
# holder move them on between the two instructions.
RETURN_WINDOW = timedelta(hours=1)
Key = tuple[str, str]  # (institution, account)


@dataclass
class Account:
    institution: str
    number: str
    holder: str
    layer: int = 0
    balance: Decimal = Decimal("0.00")
    holds: dict[str, Decimal] = field(default_factory=dict)  # instruction id → amount held
    hold_cases: dict[str, str] = field(default_factory=dict)  # instruction id → case number
    freezes: set[str] = field(default_factory=set)  # the holds that are freezes
    # A released freeze's money, kept for its return: freeze id → (amount, released at)
    to_return: dict[str, tuple[Decimal, datetime]] = field(default_factory=dict)
    received_at: datetime | None = None  # the oldest receipt not moved on yet
    transfers_out: list[OutgoingTransfer] = field(default_factory=list)

    @property
    def held(self) -> Decimal:
        return sum(self.holds.values(), Decimal("0.00"))

    @property
    def free(self) -> Decimal:
        return self.balance - self.held - sum((a for a, _ in self.to_return.values()), Decimal("0.00"))


@dataclass(frozen=True)
class Answer:
    outcome: str
    held_amount: Decimal | None = None
    reason: str | None = None
    query_result: QueryResult | None = None


class Ledger:
    def __init__(
        self,
        institutions: list[str],
        *,
        rng: random.Random,
        forward_after: timedelta,
        forward_share: Decimal,
        max_layers: int,
    ) -> None:
        self.institutions = institutions
        self.rng = rng
        self.forward_after = forward_after
        self.forward_share = forward_share
        self.max_layers = max_layers
        self.accounts: dict[Key, Account] = {}
        # Instructions a cancelled notice has withdrawn: final, whenever the instruction itself comes.
        self.withdrawn: set[str] = set()

    def credit(
        self, institution: str, number: str, amount: Decimal, *, at: datetime, layer: int = 0
    ) -> Account:
        acc = self.accounts.get((institution, number))
        if acc is None:
            acc = Account(institution, number, holder=f"Holder {number[-4:]}", layer=layer)
            self.accounts[(institution, number)] = acc
        acc.balance += amount
        # The clock runs from the first receipt not yet moved on: a busy mule account that keeps
        # receiving still pays out, instead of holding everything while new money keeps arriving.
        if acc.received_at is None:
            acc.received_at = at
        return acc

    def move_on(self, now: datetime) -> list[OutgoingTransfer]:
        """Every account that received money long enough ago sends its free share onward."""
        moved: list[OutgoingTransfer] = []
        for acc in list(self.accounts.values()):
            if (
                acc.layer >= self.max_layers
                or acc.received_at is None
                or now - acc.received_at < self.forward_after
            ):
                continue
            for freeze, (_, released_at) in list(acc.to_return.items()):
                if now - released_at >= RETURN_WINDOW:
                    del acc.to_return[freeze]  # never returned: the holder's to move again
            amount = (acc.free * self.forward_share).quantize(CENT)
            acc.received_at = None  # one hop per receipt
            if amount <= 0:
                continue
            target = self.rng.choice(self.institutions)
            number = f"L{acc.layer + 1}{uuid.uuid4().hex[:10].upper()}"
            transfer = OutgoingTransfer(
                transfer_id=uuid.uuid4().hex[:16],
                to_institution=target,
                to_account=number,
                amount=amount,
                at=now,
            )
            acc.balance -= amount
            acc.transfers_out.append(transfer)
            self.credit(target, number, amount, at=now, layer=acc.layer + 1)
            moved.append(transfer)
        return moved

    def apply(self, message: InstructionMessage) -> Answer:
        """What the bank does with an instruction (or a notice) addressed to it."""
        acc = self.accounts.get((message.institution_id, message.account))
        iid = str(message.instruction_id)
        if message.type == "notice":
            if message.notice == "cancelled":
                self.withdrawn.add(iid)
            if acc is not None:  # a lapsed or cancelled hold is lifted
                acc.holds.pop(iid, None)
                acc.freezes.discard(iid)
                acc.hold_cases.pop(iid, None)
            return Answer("acknowledged")
        if iid in self.withdrawn:
            return Answer("rejected", reason="withdrawn by the police before it was executed")
        if acc is None:
            return Answer("account_not_found")
        if message.kind == "query":
            since = message.since or datetime.min.replace(tzinfo=UTC)
            result = QueryResult(
                holder=Holder(name=acc.holder),
                balance=acc.balance,
                transfers=[t for t in acc.transfers_out if t.at >= since],
            )
            return Answer("executed", query_result=result)
        if message.kind in ("stop_payment", "freeze"):
            if message.kind == "freeze":
                # The freeze takes over the stop-payments of its own case only: another case's hold on
                # the same mule account stays in force.
                case = message.legal_basis.case_number
                for old in [i for i, c in acc.hold_cases.items() if c == case]:
                    acc.holds.pop(old, None)
                    acc.hold_cases.pop(old, None)
            wanted = message.amount or acc.free
            held = min(wanted, acc.free).quantize(CENT)
            if held <= 0:
                return Answer("rejected", reason="no funds left in the account")
            acc.holds[iid] = held
            acc.hold_cases[iid] = message.legal_basis.case_number
            if message.kind == "freeze":
                acc.freezes.add(iid)
            if held < wanted:
                return Answer("partially_executed", held, reason=f"only {held} left in the account")
            return Answer("executed", held)
        if message.kind == "release" and message.parent_instruction_id is not None:
            parent = str(message.parent_instruction_id)
            released = acc.holds.pop(parent, None)
            acc.hold_cases.pop(parent, None)
            if released is not None and parent in acc.freezes:
                acc.freezes.discard(parent)
                acc.to_return[parent] = (released, message.issued_at)
            return Answer("executed")
        if message.kind == "return_funds" and message.amount is not None:
            parent = str(message.parent_instruction_id)
            kept, released_at = acc.to_return.get(parent, (Decimal("0.00"), message.issued_at))
            if acc.free + kept < message.amount:
                return Answer("rejected", reason="balance is lower than the amount to return")
            acc.balance -= message.amount
            if kept > message.amount:
                acc.to_return[parent] = (kept - message.amount, released_at)
            else:
                acc.to_return.pop(parent, None)
            return Answer("executed")
        return Answer("executed")  # extend: the hold simply stays
