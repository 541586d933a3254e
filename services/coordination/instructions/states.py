"""The one instruction state machine. Every status change goes through `check`.

    awaiting_approval ──approve──► issued ──relay──► delivered ──► acknowledged
          │                          │                  │               │
          ├─decline─► declined       │                  ▼               ▼
          └─cancel──► cancelled      └──(an answer may overtake the relay's mark)──►
                                        executed | partially_executed | rejected | account_not_found
    issued | delivered | acknowledged (not a hold) ──withdraw──► cancelled (the institution is told)
    issued ──delivery gave up──► failed ──(the institution had it after all: its answer)──► an answer
    executed | partially_executed (a hold: stop-payment or freeze)
          ├──lapse──► expired
          ├──release executed──► released   (executed in part: the rest stays held, in force)
          └──freeze executed──► converted (a stop-payment; also one executed after the freeze was)
    issued | delivered | acknowledged (a hold not yet executed) ──lapse──► expired
    issued | delivered | acknowledged (an extension executed once its hold is not in force) ──► cancelled

Queries, stop-payments and returns are issued at once; freezes, extensions and releases wait for a
supervisor other than the issuer. Final states never change; `failed` (delivery given up) yields to an
answer, which shows the institution had the instruction after all.
"""

from __future__ import annotations

from enum import StrEnum

from services.kit.errors import Conflict
from streams.schemas.instructions import Kind


class Status(StrEnum):
    """An instruction's status: the one spelling, used by the code, the CHECK constraint and the indexes."""

    AWAITING_APPROVAL = "awaiting_approval"
    ISSUED = "issued"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    EXECUTED = "executed"
    PARTIALLY_EXECUTED = "partially_executed"
    REJECTED = "rejected"
    ACCOUNT_NOT_FOUND = "account_not_found"
    FAILED = "failed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    RELEASED = "released"
    CONVERTED = "converted"


S = Status
ANSWERS = frozenset({S.ACKNOWLEDGED, S.EXECUTED, S.PARTIALLY_EXECUTED, S.REJECTED, S.ACCOUNT_NOT_FOUND})
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.AWAITING_APPROVAL: frozenset({S.ISSUED, S.DECLINED, S.CANCELLED}),
    S.ISSUED: frozenset({S.DELIVERED, S.FAILED, S.EXPIRED, S.CANCELLED} | ANSWERS),
    S.DELIVERED: frozenset({S.EXPIRED, S.CANCELLED} | ANSWERS),
    S.ACKNOWLEDGED: frozenset(
        {S.EXECUTED, S.PARTIALLY_EXECUTED, S.REJECTED, S.ACCOUNT_NOT_FOUND, S.EXPIRED, S.CANCELLED}
    ),
    S.EXECUTED: frozenset({S.EXPIRED, S.RELEASED, S.CONVERTED}),
    S.PARTIALLY_EXECUTED: frozenset({S.EXPIRED, S.RELEASED, S.CONVERTED}),
    S.REJECTED: frozenset(),
    S.ACCOUNT_NOT_FOUND: frozenset(),
    S.FAILED: ANSWERS,  # a last attempt that timed out may have reached the institution
    S.DECLINED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.RELEASED: frozenset(),
    S.CONVERTED: frozenset(),
}
STATUSES = tuple(Status)
# Waiting for the institution's answer.
PENDING_ANSWER = (S.ISSUED, S.DELIVERED, S.ACKNOWLEDGED)
HOLDING = (S.EXECUTED, S.PARTIALLY_EXECUTED)
# A hold that is (or may soon be) in force at the institution; one per case, account and kind.
ACTIVE = (S.AWAITING_APPROVAL, *PENDING_ANSWER, *HOLDING)
HOLD_KINDS = (Kind.STOP_PAYMENT, Kind.FREEZE)
NEEDS_APPROVAL = frozenset({Kind.FREEZE, Kind.EXTEND, Kind.RELEASE})
# Only holds lapse or are released; the other kinds are done once executed.
_HOLD_ONLY = frozenset({S.EXPIRED, S.RELEASED, S.CONVERTED})


def allowed(kind: str, current: str) -> frozenset[Status]:
    nexts = TRANSITIONS[Status(current)]
    if kind not in HOLD_KINDS:
        nexts = nexts - _HOLD_ONLY
    elif current in PENDING_ANSWER:
        # A hold sent to its institution is not withdrawn: it lapses by itself, and one in force is released
        # (with a supervisor's approval, which a withdrawal would go round).
        nexts = nexts - {S.CANCELLED}
    return nexts


def check(*, kind: str, current: str, target: str) -> None:
    """Raise Conflict (HTTP 409) naming the current state when `target` is not reachable from it."""
    if target not in allowed(kind, current):
        raise Conflict(
            f"a {kind} instruction that is {current} cannot become {target}",
            details={"current_status": current, "allowed": sorted(allowed(kind, current))},
        )
