"""The simulated banks' books: busy mule accounts still pay out; a freeze takes over its own case's holds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.banksim.ledger import RETURN_WINDOW, Ledger
from tests.banksim.test_banksim import _msg


def _ledger() -> Ledger:
    return Ledger(
        ["bank-x"],
        rng=random.Random(1),
        forward_after=timedelta(seconds=60),
        forward_share=Decimal("1"),
        max_layers=2,
    )


def test_a_busy_mule_account_still_moves_money_on():
    # A mule receiving from many victims every few seconds used to restart its clock with each
    # receipt and never pay out, so the story's query never found a next hop.
    ledger = _ledger()
    t0 = datetime.now(UTC)
    for n in range(10):
        ledger.credit("bank-x", "MULE0001", Decimal("100.00"), at=t0 + timedelta(seconds=10 * n))
    moved = ledger.move_on(t0 + timedelta(seconds=95))
    assert [t.amount for t in moved] == [Decimal("1000.00")]
    ledger.credit("bank-x", "MULE0001", Decimal("50.00"), at=t0 + timedelta(seconds=100))
    assert ledger.move_on(t0 + timedelta(seconds=120)) == []  # the clock restarts at the next receipt
    ledger.move_on(t0 + timedelta(seconds=161))
    out = ledger.accounts[("bank-x", "MULE0001")].transfers_out
    assert [t.amount for t in out] == [Decimal("1000.00"), Decimal("50.00")]


def test_a_freeze_takes_over_only_its_own_cases_stop_payment():
    ledger = _ledger()
    ledger.credit("bank-x", "MULE0001", Decimal("1000.00"), at=datetime.now(UTC))
    mine = _msg("stop_payment", "MULE0001", "300.00")
    other = _msg("stop_payment", "MULE0001", "200.00").model_copy(
        update={"legal_basis": mine.legal_basis.model_copy(update={"case_number": "C-2"})}
    )
    assert ledger.apply(mine).held_amount == Decimal("300.00")
    assert ledger.apply(other).held_amount == Decimal("200.00")
    freeze = ledger.apply(_msg("freeze", "MULE0001", "300.00"))
    assert (freeze.outcome, freeze.held_amount) == ("executed", Decimal("300.00"))
    acc = ledger.accounts[("bank-x", "MULE0001")]
    # The other case's 200 stays held: 300 frozen + 200 stopped, not 300 alone.
    assert acc.held == Decimal("500.00")
    assert str(other.instruction_id) in acc.holds and str(mine.instruction_id) not in acc.holds


def test_a_cancelled_notice_is_final_whenever_its_instruction_comes():
    """A withdrawn instruction whose delivery attempt was under way may reach the bank after its notice."""
    ledger = _ledger()
    ledger.credit("bank-x", "MULE0001", Decimal("1000.00"), at=datetime.now(UTC))
    back = _msg("return_funds", "MULE0001", "400.00")
    notice = back.model_copy(
        update={"type": "notice", "notice": "cancelled", "message_id": f"{back.message_id}:c"}
    )
    assert ledger.apply(notice).outcome == "acknowledged"
    late = ledger.apply(back)
    assert late.outcome == "rejected" and "withdrawn" in (late.reason or "")
    assert ledger.accounts[("bank-x", "MULE0001")].balance == Decimal("1000.00")  # nothing returned


def test_money_a_released_freeze_let_go_waits_for_its_return_and_no_longer():
    """The story's return failed as "balance is lower than the amount to return": between the release
    and the return the mule account had moved the released money on."""
    ledger = _ledger()
    t0 = datetime.now(UTC)
    ledger.credit("bank-x", "MULE0001", Decimal("1000.00"), at=t0 - timedelta(minutes=5))
    freeze = _msg("freeze", "MULE0001", "300.00")
    assert ledger.apply(freeze).held_amount == Decimal("300.00")
    release = _msg("release", "MULE0001").model_copy(update={"parent_instruction_id": freeze.instruction_id})
    assert ledger.apply(release).outcome == "executed"
    assert [t.amount for t in ledger.move_on(t0)] == [Decimal("700.00")]  # the free money moves on
    back = _msg("return_funds", "MULE0001", "300.00").model_copy(
        update={"parent_instruction_id": freeze.instruction_id}
    )
    assert ledger.apply(back).outcome == "executed"
    assert ledger.accounts[("bank-x", "MULE0001")].balance == Decimal("0.00")
    # Released and never returned: after the window it is the holder's to move again.
    ledger.credit("bank-x", "MULE0002", Decimal("500.00"), at=t0 - timedelta(minutes=5))
    other = _msg("freeze", "MULE0002", "500.00")
    ledger.apply(other)
    let_go = _msg("release", "MULE0002").model_copy(update={"parent_instruction_id": other.instruction_id})
    ledger.apply(let_go)
    assert ledger.move_on(t0) == []
    ledger.credit("bank-x", "MULE0002", Decimal("1.00"), at=t0)
    ledger.move_on(let_go.issued_at + RETURN_WINDOW)
    out = ledger.accounts[("bank-x", "MULE0002")].transfers_out
    assert [t.amount for t in out] == [Decimal("501.00")]
