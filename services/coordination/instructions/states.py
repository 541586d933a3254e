"""The one instruction state machine. Every status change goes through `check`.

    awaiting_approval ──approve──► issued ──relay──► delivered ──► acknowledged
          │                          │                  │               │
          ├─decline─► declined       │                  ▼               ▼
          └─cancel──► cancelled      └──(an answer may overtake the relay's mark)──►
                                        executed | partially_executed | rejected | account_not_found
    issued ──delivery gave up──► failed
    executed | partially_executed (a hold: stop-payment or freeze)
          ──lapse──► expired   ──release executed──► released   ──freeze executed──► converted
    issued | delivered | acknowledged (a hold not yet executed) ──lapse──► expired

Queries, stop-payments and returns are issued at once; freezes, extensions and releases wait for a
supervisor other than the issuer. Final states never change.
"""

from __future__ import annotations

from services.kit.errors import Conflict

ANSWERS = frozenset({"acknowledged", "executed", "partially_executed", "rejected", "account_not_found"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "awaiting_approval": frozenset({"issued", "declined", "cancelled"}),
    "issued": frozenset({"delivered", "failed", "expired"} | ANSWERS),
    "delivered": frozenset({"expired"} | ANSWERS),
    "acknowledged": frozenset({"executed", "partially_executed", "rejected", "account_not_found", "expired"}),
    "executed": frozenset({"expired", "released", "converted"}),
    "partially_executed": frozenset({"expired", "released", "converted"}),
    "rejected": frozenset(),
    "account_not_found": frozenset(),
    "failed": frozenset(),
    "declined": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
    "released": frozenset(),
    "converted": frozenset(),
}
STATUSES = tuple(TRANSITIONS)
# A hold that is (or may soon be) in force at the institution; one per case, account and kind.
ACTIVE = ("awaiting_approval", "issued", "delivered", "acknowledged", "executed", "partially_executed")
HOLDING = ("executed", "partially_executed")
PENDING_ANSWER = ("issued", "delivered", "acknowledged")
HOLD_KINDS = ("stop_payment", "freeze")
NEEDS_APPROVAL = frozenset({"freeze", "extend", "release"})
# Only holds lapse or are released; the other kinds are done once executed.
_HOLD_ONLY = frozenset({"expired", "released", "converted"})


def allowed(kind: str, current: str) -> frozenset[str]:
    nexts = TRANSITIONS[current]
    if kind not in HOLD_KINDS:
        nexts = nexts - _HOLD_ONLY
    return nexts


def check(*, kind: str, current: str, target: str) -> None:
    """Raise Conflict (HTTP 409) naming the current state when `target` is not reachable from it."""
    if target not in allowed(kind, current):
        raise Conflict(
            f"a {kind} instruction that is {current} cannot become {target}",
            details={"current_status": current, "allowed": sorted(allowed(kind, current))},
        )
