"""Per-person state and the features of a money-out event (a transfer or payment) in its context.

State is kept per person (by phone), bounded by age: everything older than `horizon_s` of event
time is dropped. Events may arrive out of order: a call record arrives when the call ends, often
after a transfer the victim made while still on the phone, so features are recomputed for recent
money-out events when a call arrives.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

CALL_WINDOW_S = 3600  # a call counts for transfers up to an hour after it ended
RECENT_S = 2 * 3600  # calls and transfers kept in detail this long

FEATURE_NAMES = (
    "amount",
    "payee_new",
    "call_present",
    "call_duration_min",
    "caller_unknown",
    "caller_reported",
    "caller_international",
    "minutes_call_end_to_transfer",
    "transfers_1h_count",
    "transfers_1h_sum",
    "new_payees_24h",
    "sim_change_24h",
    "new_device_24h",
    "hour_of_day",
)


@dataclass(frozen=True)
class CallSeen:
    caller: str
    start: float
    end: float
    reported: bool
    caller_known: bool
    ref: str


@dataclass(frozen=True)
class MoneyOut:
    at: float
    payee: str  # "institution/account"
    amount: float
    payee_new: bool
    ref: str
    institution: str
    account: str
    payee_account: str
    payee_institution: str


@dataclass
class PersonState:
    contacts: dict[str, float] = field(default_factory=dict)  # number → last contact (event time)
    payees: dict[str, float] = field(default_factory=dict)  # payee → last paid
    new_payee_times: deque[float] = field(default_factory=deque)
    calls: deque[CallSeen] = field(default_factory=deque)
    outs: deque[MoneyOut] = field(default_factory=deque)
    sim_change_at: float | None = None
    new_device_at: float | None = None
    alerted: dict[str, float] = field(default_factory=dict)  # alert key → when
    last_seen: float = 0.0

    def prune(self, now: float, horizon_s: float) -> None:
        """Drop what is older than the horizon (contacts, payees) or than the recent window (detail)."""
        for book in (self.contacts, self.payees, self.alerted):
            for key in [k for k, t in book.items() if t < now - horizon_s]:
                del book[key]
        while self.calls and self.calls[0].end < now - RECENT_S:
            self.calls.popleft()
        while self.outs and self.outs[0].at < now - RECENT_S:
            self.outs.popleft()
        while self.new_payee_times and self.new_payee_times[0] < now - 86_400:
            self.new_payee_times.popleft()

    def record_contact(self, number: str, at: float) -> bool:
        """Remember a contact; return whether the number had been in contact before."""
        known = number in self.contacts and self.contacts[number] < at
        self.contacts[number] = max(at, self.contacts.get(number, at))
        return known

    def record_call(self, call: CallSeen) -> None:
        self.calls.append(call)
        if len(self.calls) > 1 and self.calls[-2].end > call.end:
            self.calls = deque(sorted(self.calls, key=lambda c: c.end))

    def record_out(self, out: MoneyOut) -> None:
        if out.payee_new:
            self.new_payee_times.append(out.at)
        self.payees[out.payee] = max(out.at, self.payees.get(out.payee, out.at))
        self.outs.append(out)
        if len(self.outs) > 1 and self.outs[-2].at > out.at:
            self.outs = deque(sorted(self.outs, key=lambda o: o.at))

    def suspicious_call_before(self, out: MoneyOut) -> CallSeen | None:
        """The most suspicious call that could have led to this money-out: started before it and
        ended at most an hour before it. Unknown or reported callers first, then the longest."""
        candidates = [c for c in self.calls if c.start <= out.at <= c.end + CALL_WINDOW_S]
        if not candidates:
            return None
        return max(candidates, key=lambda c: (c.reported or not c.caller_known, c.end - c.start))

    def features(self, out: MoneyOut, hour_of_day: int) -> tuple[dict[str, float], CallSeen | None]:
        call = self.suspicious_call_before(out)
        last_hour = [o for o in self.outs if out.at - 3600 <= o.at <= out.at]
        values = {
            "amount": out.amount,
            "payee_new": float(out.payee_new),
            "call_present": float(call is not None),
            "call_duration_min": (call.end - call.start) / 60 if call else 0.0,
            "caller_unknown": float(call is not None and not call.caller_known),
            "caller_reported": float(call is not None and call.reported),
            "caller_international": float(call is not None and not call.caller.startswith("+86")),
            "minutes_call_end_to_transfer": (out.at - call.end) / 60 if call else 0.0,
            "transfers_1h_count": float(len(last_hour)),
            "transfers_1h_sum": sum(o.amount for o in last_hour),
            "new_payees_24h": float(sum(1 for t in self.new_payee_times if out.at - 86_400 <= t <= out.at)),
            "sim_change_24h": float(
                self.sim_change_at is not None and 0 <= out.at - self.sim_change_at <= 86_400
            ),
            "new_device_24h": float(
                self.new_device_at is not None and 0 <= out.at - self.new_device_at <= 86_400
            ),
            "hour_of_day": float(hour_of_day),
        }
        return values, call
