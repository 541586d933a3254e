"""The simulator's unit of traffic: one event as it will be posted, with who reports it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

TELECOMS = ("telecom-a", "telecom-b", "telecom-c")
BANKS = ("bank-a", "bank-b", "bank-c", "bank-d", "bank-e", "bank-f", "bank-g", "bank-h")
PAYMENT = "pay-a"  # the payment provider of most wallets
PAYMENTS = (PAYMENT, "pay-b")
INSTITUTIONS: dict[str, str] = {
    **{t: "telecom" for t in TELECOMS},
    **{b: "bank" for b in BANKS},
    **{p: "payment" for p in PAYMENTS},
}
# Always report: the simulated banks (services.banksim) and the demo story answer for these. Of the
# others, a share reports nothing (`World.silent`), as small institutions in practice do not.
ALWAYS_REPORTING = ("telecom-a", "telecom-b", "bank-a", "bank-b", "bank-c", PAYMENT)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class SimEvent:
    """`body` is the JSON-ready event; `scenario_id` is None for normal traffic."""

    institution: str
    person_phone: str
    body: dict[str, Any]
    scenario_id: str | None = None

    @property
    def source(self) -> str:
        return INSTITUTIONS[self.institution]

    @property
    def event_id(self) -> str:
        return str(self.body["event_id"])

    @property
    def ref(self) -> str:
        """`institution:event_id`, the form alerts use in `triggering_event_ids`."""
        return f"{self.institution}:{self.event_id}"


class IdSource:
    """Event ids unique across runs (the run tag) and within one (a counter), alike for normal and fraud
    events so nothing in an id gives a scenario away."""

    def __init__(self, run_tag: str) -> None:
        self.run_tag = run_tag
        self._n = 0

    def next(self) -> str:
        self._n += 1
        return f"{self.run_tag}-{self._n:x}"


def stamp(when: datetime) -> str:
    return when.isoformat()


def money(value: float | Decimal) -> str:
    """A positive amount with two decimals, as the schema's Decimal accepts it from JSON."""
    amount = Decimal(str(value)).quantize(CENT)
    return str(max(amount, CENT))
