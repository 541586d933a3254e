"""Per-account state (inflows and outflows) and the features of an account as a possible mule."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 3600

FEATURE_NAMES = (
    "distinct_payers_1h",
    "received_1h_sum",
    "paid_out_1h_sum",
    "payout_ratio",
    "minutes_money_rests",
    "distinct_payees_1h",
)


@dataclass(frozen=True)
class Flow:
    at: float
    counterparty: str
    amount: float
    ref: str


@dataclass
class AccountState:
    ins: deque[Flow] = field(default_factory=deque)
    outs: deque[Flow] = field(default_factory=deque)
    holder_phone: str | None = None
    alerted_at: float | None = None
    last_seen: float = 0.0

    def prune(self, now: float) -> None:
        for flows in (self.ins, self.outs):
            while flows and flows[0].at < now - 2 * WINDOW_S:
                flows.popleft()

    def add(self, flows: deque[Flow], flow: Flow) -> None:
        flows.append(flow)
        if len(flows) > 1 and flows[-2].at > flow.at:  # late event: keep time order
            ordered = sorted(flows, key=lambda f: f.at)
            flows.clear()
            flows.extend(ordered)

    def features(self, now: float) -> dict[str, float]:
        ins = [f for f in self.ins if now - WINDOW_S <= f.at <= now]
        outs = [f for f in self.outs if now - WINDOW_S <= f.at <= now]
        received = sum(f.amount for f in ins)
        paid = sum(f.amount for f in outs)
        rests = (outs[0].at - ins[0].at) / 60 if ins and outs and outs[0].at >= ins[0].at else 0.0
        return {
            "distinct_payers_1h": float(len({f.counterparty for f in ins})),
            "received_1h_sum": received,
            "paid_out_1h_sum": paid,
            "payout_ratio": min(paid / received, 1.0) if received else 0.0,
            "minutes_money_rests": rests,
            "distinct_payees_1h": float(len({f.counterparty for f in outs})),
        }
