"""Per-account state (inflows and outflows) and the graph features of an account: as the payee of a
money-out (fan-in, how long money rests, whether it paid the payer before) and as a possible mule paying
out what it collected.

An account's outflows reach Stopline only if its own institution reports; many do not. So the payee
features say whether the payee's institution is seen reporting outflows at all (`Reporters`): without
it, "never paid out" would be read where nothing can be known."""

from __future__ import annotations

from dataclasses import dataclass, field

from models.features.person import DAY_S, AlertSeen, log10
from models.features.windows import Window, prune_due

WINDOW_S = 3600
NEVER_RESTS_MIN = 24 * 60.0  # "money rests a day or more": the value for an account that never paid out

PAYEE_FEATURES = (
    "payee_payers_10m",
    "payee_payers_1h",
    "payee_payers_24h",
    "payee_inflows_24h",
    "payee_received_24h_log10",
    "payee_paid_out_24h_log10",
    "payee_payout_ratio_24h",
    "payee_minutes_money_rests",
    "payee_payees_24h",
    "payee_paid_payer_24h",
    "payee_outflows_seen",
    "payee_active_hours",
)
ACTIVE_CAP_H = 24.0  # "seen active for a day or more": no feature may grow with how long Stopline has run
EPISODE_S = 3 * DAY_S  # an alert's episode stays open this long after its last payment
REPORTING_S = 2 * DAY_S  # an institution seen reporting an outflow this recently is taken to report


@dataclass
class Reporters:
    """Institutions seen reporting outflows, by when they last did (event time)."""

    last: dict[str, float] = field(default_factory=dict)

    def saw(self, institution: str, at: float) -> None:
        if at > self.last.get(institution, float("-inf")):
            self.last[institution] = at

    def reports(self, institution: str, at: float) -> bool:
        return at - self.last.get(institution, float("-inf")) <= REPORTING_S


@dataclass
class AccountState:
    first_seen: float | None = None
    last_seen: float = 0.0
    ins_10m: Window = field(default_factory=lambda: Window(600))
    ins_1h: Window = field(default_factory=lambda: Window(WINDOW_S))
    ins_24h: Window = field(default_factory=lambda: Window(DAY_S))
    outs_1h: Window = field(default_factory=lambda: Window(WINDOW_S))
    outs_24h: Window = field(default_factory=lambda: Window(DAY_S))
    refs: dict[str, float] = field(default_factory=dict)  # movements already counted (replays)
    first_in_since_out: float | None = None  # the oldest inflow not yet followed by an outflow
    rests_min: float = NEVER_RESTS_MIN  # last observed time from an inflow to the next outflow
    holder_phone: str | None = None
    mule_alert: AlertSeen | None = None  # this account's own (mule_fan_in) alert
    victims: dict[str, AlertSeen] = field(default_factory=dict)  # payer's phone → their alert, paying here

    def seen(self, at: float) -> None:
        """Note an event's time; the books are pruned when it enters another minute (`prune_due`)."""
        before = self.last_seen
        self.first_seen = at if self.first_seen is None else min(self.first_seen, at)
        self.last_seen = max(self.last_seen, at)
        if prune_due(before, self.last_seen):
            self.prune(self.last_seen)

    def prune(self, now: float) -> None:
        # Refs are kept in the order they came, nearly that of time: the walk stops at the first one still
        # young (a busy merchant's day holds 10^5 refs, walked whole every minute before). One that came
        # late goes once those before it have; kept longer, a ref only guards against a replay longer.
        expired = []
        for ref, at in self.refs.items():
            if at >= now - DAY_S:
                break
            expired.append(ref)
        for ref in expired:
            del self.refs[ref]
        for key in [k for k, a in self.victims.items() if a.last_at < now - EPISODE_S]:
            del self.victims[key]

    def record_in(self, at: float, payer: str, amount: float, ref: str) -> bool:
        """Count an inflow; False if this movement was counted before (a replay)."""
        if ref in self.refs:
            return False
        self.refs[ref] = at
        self.seen(at)
        for window in (self.ins_10m, self.ins_1h, self.ins_24h):
            window.add(at, payer, amount)
        if self.first_in_since_out is None or at < self.first_in_since_out:
            self.first_in_since_out = at
        return True

    def record_out(self, at: float, payee: str, amount: float, ref: str) -> bool:
        """Count an outflow; False if counted before."""
        if ref in self.refs:
            return False
        self.refs[ref] = at
        self.seen(at)
        for window in (self.outs_1h, self.outs_24h):
            window.add(at, payee, amount)
        if self.first_in_since_out is not None and at >= self.first_in_since_out:
            self.rests_min = (at - self.first_in_since_out) / 60
            self.first_in_since_out = None
        return True

    def payee_features(self, now: float, payer: str, outflows_seen: bool) -> list[float]:
        """The PAYEE_FEATURES of this account as it receives a payment at `now` from `payer`
        ("institution/account"), in order; `outflows_seen`: its institution reports outflows."""
        _, _, payers_10m = self.ins_10m.stats(now)
        _, _, payers_1h = self.ins_1h.stats(now)
        n24, received, payers_24h = self.ins_24h.stats(now)
        _, paid, payees = self.outs_24h.stats(now)
        return [
            float(payers_10m),
            float(payers_1h),
            float(payers_24h),
            float(n24),
            log10(received),
            log10(paid),
            min(paid / received, 1.0) if received > 0 else 0.0,
            self.rests_min,
            float(payees),
            float(payer in self.outs_24h.distinct),
            float(outflows_seen),
            min((now - self.first_seen) / 3600, ACTIVE_CAP_H) if self.first_seen is not None else 0.0,
        ]

    def mule_features(self, now: float) -> dict[str, float]:
        """What the mule fan-in rule reads: the last hour's collection and pay-out."""
        _, received, payers = self.ins_1h.stats(now)
        _, paid, payees = self.outs_1h.stats(now)
        first_in = self.ins_1h.times[0] if self.ins_1h.times else None
        first_out = next((t for t in self.outs_1h.times if first_in is not None and t >= first_in), None)
        rests = (first_out - first_in) / 60 if first_in is not None and first_out is not None else 0.0
        return {
            "distinct_payers_1h": float(payers),
            "received_1h_sum": received,
            "paid_out_1h_sum": paid,
            "payout_ratio": min(paid / received, 1.0) if received else 0.0,
            "minutes_money_rests": rests,
            "minutes_money_rested": self.rests_min,  # since the oldest inflow this pay-out took on
            "distinct_payees_1h": float(payees),
        }
