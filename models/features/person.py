"""Per-person state and the person-side features of a money-out event (a transfer or wallet payment).

State is kept per person (by phone) and bounded by age: contacts and payees older than the horizon are
forgotten, detail (calls, money-outs) is kept for two hours, windowed counts for at most a week. Events
may arrive out of order: a call record arrives when the call ends, often after a transfer the victim made
while still on the phone, so `record_call` tells which recent money-outs must be scored again (and
`record_sim_change`, `record_link_sms` and `record_new_device` likewise, for a SIM change, a link SMS or a
new device's login read after the payments it preceded).

Sequences are features of their own, because the order is the signal: a call from an unknown number
*then* a payment to a new payee within the hour; a link SMS *then* a login from a new device *then* a
payment; a SIM card changed *then* payments; a wallet topped up *then* paid to a new payee. Each fact
alone is common in ordinary life (couriers call, phones are replaced, notices carry links).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TypeVar

from models.features.numbers import is_fixed_line, is_international, is_virtual_operator
from models.features.windows import Window, prune_due

DAY_S = 86_400.0
CALL_WINDOW_S = 3600  # a call counts for money-outs up to an hour after it ended
RECENT_S = 2 * 3600  # calls and money-outs kept in detail this long
# ... and at most this many of each: a person makes a handful in two hours, a company's switchboard
# number thousands, and every call or payment looks through them (the oldest go first).
RECENT_MAX = 100
LONG_CALL_S = 300  # a call this long from an unknown number is worth counting
ESTABLISHED_S = 2 * DAY_S  # a number first in touch this long ago is a known contact
# An account the person paid out of, or signed in to from a known device, this long ago is theirs: a "safe
# account" opened in a victim's name for the scammers pays them within hours of the first deposit.
OWN_ACCOUNT_S = DAY_S
OWN_ACCOUNTS_MAX = 8  # banks' and wallets' accounts of one person: more is not a person's
WEEK_S = 7 * DAY_S
# Enough earlier payments to trust "typical"; a cap, so the feature does not keep growing with how long
# Stopline has been running (no feature may measure that: a fresh deployment would look like fraud).
PRIOR_CAP = 20
# A person's typical payment before Stopline has seen one of theirs: an everyday payment's size. Without
# it a first payment of any size read as "as usual", and a new customer's first large transfer after a
# stranger's call scored as if it were their habit.
TYPICAL_FIRST_PAYMENT_CNY = 300.0
# A payee first paid within the last week is a new relationship, unless that first payment came within a
# day of the person's first money-out Stopline saw: a regular payee's first payment after a deployment (or
# after state was lost, or once the person's bank starts reporting) is no new acquaintance, and no feature
# may read a fresh deployment as fraud. Such a payee reads as an old relationship, RELATIONSHIP_CAP_H.
RELATIONSHIP_CAP_H = WEEK_S / 3600
SETTLING_S = DAY_S
PAYEE_STEPS_KEPT = 4  # a payee's latest payments kept, for the step from the one before (late ones too)

PERSON_FEATURES = (
    "amount_log10",
    "amount_vs_typical",
    "prior_money_outs",
    "wallet_payment",
    "payee_new",
    "payee_prior_count",
    "to_payee_24h_sum_log10",
    "outs_10m_count",
    "outs_1h_count",
    "outs_1h_sum_log10",
    "outs_24h_count",
    "outs_24h_sum_log10",
    "new_payees_24h",
    "payee_first_paid_h",
    "amount_vs_last_to_payee",
    "to_recent_payees_7d_sum_log10",
    "call_present",
    "call_duration_min",
    "caller_unknown",
    "caller_reported",
    "caller_international",
    "caller_virtual_operator",
    "caller_fixed_line",
    "minutes_call_end_to_transfer",
    "unknown_calls_24h",
    "long_unknown_calls_7d",
    "reported_calls_7d",
    "link_sms_7d",
    "hours_since_sim_change",
    "hours_since_new_device",
    "seq_unknown_call_new_payee",
    "seq_link_new_device_payment",
    "seq_sim_change_payment",
    "seq_topup_new_payee",
    "telecom_seen",
)
SINCE_CAP_H = 72.0  # "hours since" a SIM change or a new device: this value means "not in three days"
SEQUENCE_S = 3600  # the steps of a sequence follow each other within an hour
LINK_BEFORE_DEVICE_S = DAY_S  # a link SMS may come a day before the login it gave away
DEVICE_SEQUENCE_S = 2 * SEQUENCE_S  # payments this long after a new device's login follow it


def log10(value: float) -> float:
    return math.log10(1.0 + max(value, 0.0))


@dataclass(frozen=True, slots=True)
class CallSeen:
    caller: str
    start: float
    end: float
    reported: bool
    caller_known: bool
    ref: str


@dataclass(frozen=True, slots=True)
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
    wallet: bool = False


@dataclass(slots=True)
class PaidSeen:
    """One payment of an alerted episode, as the alert said it."""

    ref: str
    amount: float
    at: float
    payee_institution: str
    payee_account: str


@dataclass
class AlertSeen:
    """The person's latest alert as a victim (stage one reads the alerts topic): while it is open, the
    person's later payments are sent as revisions of it (services/scorer/episodes.py)."""

    alert_id: str
    revision: int
    incident_id: str  # "" when the alert names none
    last_at: float  # event time of its newest payment
    kind: str  # the alert's typology (call_then_transfer, suspicious_payment, mule_fan_in)
    payments: list[PaidSeen] = field(default_factory=list)
    amount: float = 0.0  # a mule_fan_in alert's amount at risk (a victim's is the sum of its payments)
    # Stage two's, of a victim's alert: the highest score it was sent with and the hard-rule reasons it
    # gave, so a payment scored again (a late call, SIM change, link SMS or login) revises it only if that
    # adds to them.
    score: float = 0.0
    hard: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PayeeSeen:
    first: float
    count: int
    # Its latest payments (at most PAYEE_STEPS_KEPT, never none), in time order.
    times: list[float] = field(default_factory=list)
    amounts: list[float] = field(default_factory=list)

    @property
    def last(self) -> float:
        return self.times[-1]


def _covers(call: CallSeen, at: float) -> bool:
    """Whether a money-out at `at` may follow the call: made during it or up to CALL_WINDOW_S after."""
    return call.start <= at <= call.end + CALL_WINDOW_S


def _rank(call: CallSeen) -> tuple[bool, bool, float]:
    """How suspicious a call is: reported callers first, then unknown ones, then the longest."""
    return (call.reported, not call.caller_known, call.end - call.start)


_ended = attrgetter("end")
_made = attrgetter("at")
T = TypeVar("T")


def _keep(book: list[T], item: T, key: Callable[[T], float]) -> None:
    """Put an item in a recent-detail book in time order (a late one after those of its time, as they
    came) and keep the newest RECENT_MAX."""
    bisect.insort(book, item, key=key)
    del book[:-RECENT_MAX]


def _windows(span: float) -> Window:
    return Window(span, cap=500)  # one person's activity: 500 entries is far beyond any real day


@dataclass(slots=True)  # a few hundred bytes less per person than an instance dict
class PersonState:
    first_seen: float | None = None
    last_seen: float = 0.0
    contacts: dict[str, float] = field(default_factory=dict)  # number → last contact (event time)
    contacts_since: dict[str, float] = field(default_factory=dict)  # number → first contact (event time)
    payees: dict[str, PayeeSeen] = field(default_factory=dict)
    # The person's own accounts, "institution/account" → when first used as theirs (event time): only the
    # first use matters (`owns`), so nothing ages them out; forgotten with the person; OWN_ACCOUNTS_MAX.
    accounts: dict[str, float] = field(default_factory=dict)
    calls: list[CallSeen] = field(default_factory=list)  # by end time
    outs: list[MoneyOut] = field(default_factory=list)  # by time
    outs_10m: Window = field(default_factory=lambda: _windows(600))
    outs_1h: Window = field(default_factory=lambda: _windows(3600))
    outs_24h: Window = field(default_factory=lambda: _windows(DAY_S))
    new_payees_24h: Window = field(default_factory=lambda: _windows(DAY_S))
    # Money paid to payees that were new relationships when paid (`new_relationship`): an investment or a
    # loan scam's deposits and fees pile up there over days, each one ordinary in size.
    to_recent_payees_7d: Window = field(default_factory=lambda: _windows(WEEK_S))
    to_payee_24h: dict[str, Window] = field(default_factory=dict)
    unknown_calls_24h: Window = field(default_factory=lambda: _windows(DAY_S))
    long_unknown_calls_7d: Window = field(default_factory=lambda: _windows(WEEK_S))
    reported_calls_7d: Window = field(default_factory=lambda: _windows(WEEK_S))
    link_sms_7d: Window = field(default_factory=lambda: _windows(WEEK_S))
    first_out_at: float | None = None  # the first money-out seen (event time)
    out_count: int = 0
    out_log_sum: float = 0.0
    sim_change_at: float | None = None
    new_device_at: float | None = None
    link_sms_at: float | None = None  # the last SMS with a link from an unknown sender
    link_before_device: bool = False  # such an SMS came within a day before the last new device's login
    topup_at: float | None = None  # the last wallet top-up
    telecom_at: float | None = None  # the last telecom event: its operator reports (calls are seen)
    books_pruned_at: float = 0.0
    alert: AlertSeen | None = None
    next_alert: str | None = None  # the id the person's next alert takes (services/scorer/episodes.py)

    def seen(self, at: float) -> bool:
        """Note an event's time; return whether the books are due a pruning (`prune_due`)."""
        before = self.last_seen
        self.first_seen = at if self.first_seen is None else min(self.first_seen, at)
        self.last_seen = max(self.last_seen, at)
        return prune_due(before, self.last_seen)

    def prune(self, now: float, horizon_s: float) -> None:
        """Drop what is older than the recent window (detail, each minute) or than the horizon (contacts,
        payees: hourly, as a walk over a busy number's contacts costs more than their age is worth)."""
        del self.calls[: bisect.bisect_left(self.calls, now - RECENT_S, key=_ended)]
        del self.outs[: bisect.bisect_left(self.outs, now - RECENT_S, key=_made)]
        if now - self.books_pruned_at < 3600:
            return
        self.books_pruned_at = now
        for key in [k for k, t in self.contacts.items() if t < now - horizon_s]:
            del self.contacts[key]
            self.contacts_since.pop(key, None)
        for key in [k for k, p in self.payees.items() if p.last < now - horizon_s]:
            del self.payees[key]
        for key in [k for k, w in self.to_payee_24h.items() if w.newest < now - DAY_S]:
            del self.to_payee_24h[key]

    def record_account(self, key: str, at: float) -> None:
        """Note an account ("institution/account") the person used as theirs: paid out of, or signed in to
        from a known device."""
        first = self.accounts.get(key)
        if first is not None:
            self.accounts[key] = min(first, at)
        elif len(self.accounts) < OWN_ACCOUNTS_MAX:
            self.accounts[key] = at

    def owns(self, key: str, at: float) -> bool:
        """Whether the account was the person's own at `at`: used as theirs `OWN_ACCOUNT_S` or more before."""
        since = self.accounts.get(key)
        return since is not None and since <= at - OWN_ACCOUNT_S

    def record_contact(self, number: str, at: float) -> bool:
        """Remember a contact; return whether the number is an established contact: first in touch more
        than ESTABLISHED_S before. A scammer who called yesterday to prepare today's call is no
        acquaintance; someone the person has been in touch with for days is."""
        first = self.contacts_since.get(number)
        known = first is not None and first < at - ESTABLISHED_S
        self.contacts[number] = max(at, self.contacts.get(number, at))
        self.contacts_since[number] = at if first is None else min(first, at)
        return known

    def record_call(self, call: CallSeen) -> list[MoneyOut]:
        """Remember a call; return the money-outs it may have led to (made during it or within the hour
        after it) whose call-before it now is: they were scored without it and must be scored again. A
        money-out still attributed to another, more suspicious call is not: its score would barely move,
        and a busy person's every call would otherwise rescore every payment of the hour."""
        _keep(self.calls, call, _ended)
        if not call.caller_known:
            self.unknown_calls_24h.add(call.start, call.caller, 1.0)
            if call.end - call.start >= LONG_CALL_S:
                self.long_unknown_calls_7d.add(call.start, call.caller, 1.0)
        if call.reported:
            self.reported_calls_7d.add(call.start, call.caller, 1.0)
        after = [o for o in self.outs if _covers(call, o.at)]
        if not after:
            return []
        # The call is a money-out's call-before unless another call covering it ranks higher (or as high,
        # coming first: `max` keeps the first). Only calls ranked that high can be rivals: one pass over
        # the calls, not one per money-out (a busy number has up to RECENT_MAX of each).
        rank, rivals, earlier = _rank(call), [], True
        for c in self.calls:
            if c is call:
                earlier = False
            elif (theirs := _rank(c)) > rank or (earlier and theirs == rank):
                rivals.append(c)
        return [o for o in after if not any(_covers(c, o.at) for c in rivals)]

    def record_sim_change(self, at: float) -> list[MoneyOut]:
        """Remember a SIM change; return the money-outs made after it that were scored without it (the
        operator reported it late, or its topic was read after the bank's): scored again, as after a
        late call. An older change than the one known changes nothing: the features read the latest."""
        if self.sim_change_at is not None and at <= self.sim_change_at:
            return []
        self.sim_change_at = at
        return self.outs_since(at)

    def record_link_sms(self, sender: str, at: float) -> list[MoneyOut]:
        """Remember an SMS with a link from an unknown sender; return the money-outs made after it that it
        tells about, scored again as after a SIM change (the operator's topic read after the bank's): those
        with no such SMS known in the week before them, and, if it makes the new device's login the
        sequence's second step (read after the login it came before), those of that sequence. A person
        sent many such texts is not scored again for each; the same text again scores nothing."""
        texts = self.link_sms_7d
        if at < texts.newest - texts.span_s:
            return []  # older than the week kept: counted by nothing
        same_time = slice(bisect.bisect_left(texts.times, at), bisect.bisect_right(texts.times, at))
        if sender in texts.keys[same_time]:
            return []
        told = {
            id(o)
            for o in self.outs_since(at)
            if o.at < at + WEEK_S and not _any_in(texts.times, o.at - WEEK_S, o.at)
        }
        texts.add(at, sender, 1.0)
        self.link_sms_at = at if self.link_sms_at is None else max(self.link_sms_at, at)
        device = self.new_device_at
        if device is not None and not self.link_before_device and 0 <= device - at <= LINK_BEFORE_DEVICE_S:
            self.link_before_device = True
            told |= {id(o) for o in self.outs if 0 <= o.at - device <= DEVICE_SEQUENCE_S}
        return [o for o in self.outs if id(o) in told]

    def record_new_device(self, at: float) -> list[MoneyOut]:
        """Remember a login from a new device; return the money-outs made after it, scored again as after
        a SIM change (a wallet's login read after a bank's payment). An older login than the one known
        changes nothing (the features read the latest): a payment made between the two is not scored
        with the older one."""
        if self.new_device_at is not None and at <= self.new_device_at:
            return []
        self.new_device_at = at
        # Any such SMS of the day before, not only the last: a later one may have been read first.
        self.link_before_device = self.link_sms_at is not None and _any_in(
            self.link_sms_7d.times, at - LINK_BEFORE_DEVICE_S, at
        )
        return self.outs_since(at)

    def outs_since(self, at: float) -> list[MoneyOut]:
        """The money-outs kept in detail made at `at` or after, in time order."""
        return self.outs[bisect.bisect_left(self.outs, at, key=_made) :]

    def new_money_out(self, at: float, payee: str) -> bool:
        """Whether this payee is new for the person at `at`."""
        seen = self.payees.get(payee)
        return seen is None or seen.first >= at

    def new_relationship(self, seen: PayeeSeen, at: float) -> bool:
        """Whether the person first paid this payee within the week before `at`, as a new acquaintance
        (see SETTLING_S)."""
        settled = self.first_out_at is not None and seen.first - self.first_out_at > SETTLING_S
        return settled and at - seen.first <= WEEK_S

    def relationship(self, seen: PayeeSeen | None, out: MoneyOut) -> tuple[float, float]:
        """(hours since the person first paid the payee: 0 for a new payee, RELATIONSHIP_CAP_H for an old
        relationship; the log step from the payment to it just before this one, 0 with none kept). Both
        as known at the payment's own time: a rescore after a late call, or a late payment, is not
        compared with a payment made after it."""
        if out.payee_new or seen is None:
            return 0.0, 0.0
        hours = (out.at - seen.first) / 3600 if self.new_relationship(seen, out.at) else RELATIONSHIP_CAP_H
        before = bisect.bisect_left(seen.times, out.at)
        step = (
            math.log10(max(out.amount, 1.0)) - math.log10(max(seen.amounts[before - 1], 1.0))
            if before
            else 0.0
        )
        return max(hours, 0.0), step

    def record_out(self, out: MoneyOut) -> None:
        seen = self.payees.get(out.payee)
        if seen is None:
            seen = self.payees[out.payee] = PayeeSeen(out.at, 1)
        else:
            seen.first, seen.count = min(seen.first, out.at), seen.count + 1
        i = bisect.bisect_right(seen.times, out.at)
        seen.times.insert(i, out.at)
        seen.amounts.insert(i, out.amount)
        del seen.times[:-PAYEE_STEPS_KEPT], seen.amounts[:-PAYEE_STEPS_KEPT]
        self.first_out_at = out.at if self.first_out_at is None else min(self.first_out_at, out.at)
        if self.new_relationship(seen, out.at):
            self.to_recent_payees_7d.add(out.at, out.payee, out.amount)
        if out.payee_new:
            self.new_payees_24h.add(out.at, out.payee, 1.0)
        for window in (self.outs_10m, self.outs_1h, self.outs_24h):
            window.add(out.at, out.payee, out.amount)
        self.to_payee_24h.setdefault(out.payee, _windows(DAY_S)).add(out.at, out.payee, out.amount)
        self.out_count += 1
        self.out_log_sum += math.log10(max(out.amount, 1.0))
        _keep(self.outs, out, _made)

    def suspicious_call_before(self, out: MoneyOut) -> CallSeen | None:
        """The most suspicious call that could have led to this money-out: started before it and ended at
        most an hour before it. Reported or unknown callers first, then the longest."""
        candidates = [c for c in self.calls if _covers(c, out.at)]
        return max(candidates, key=_rank) if candidates else None

    def features(self, out: MoneyOut) -> tuple[list[float], CallSeen | None]:
        """The PERSON_FEATURES of a money-out already recorded, in order, and the call it follows."""
        at = out.at
        call = self.suspicious_call_before(out)
        seen = self.payees.get(out.payee)
        # What had been paid before it: not the payments made after it (those after it in the recent detail,
        # in time order, ties as they came), already recorded when it is scored again after a late call, or
        # when it came late itself (within the detail's RECENT_S).
        # (Found by bisection: this runs for every payment scored, nearly always the newest.)
        first = bisect.bisect_left(self.outs, at, key=_made)
        after = bisect.bisect_right(self.outs, at, lo=first, key=_made)
        mine = next((i for i in range(first, after) if self.outs[i].ref == out.ref), after - 1)
        later = self.outs[mine + 1 :]
        prior = max(self.out_count - 1 - len(later), 0)
        prior_log_sum = self.out_log_sum - sum(math.log10(max(o.amount, 1.0)) for o in (out, *later))
        typical = prior_log_sum / prior if prior else math.log10(TYPICAL_FIRST_PAYMENT_CNY)
        payee_prior = seen.count - 1 - sum(o.payee == out.payee for o in later) if seen else 0
        n10, _, _ = self.outs_10m.stats(at)
        n1, s1, _ = self.outs_1h.stats(at)
        n24, s24, _ = self.outs_24h.stats(at)
        _, to_payee, _ = (
            self.to_payee_24h[out.payee].stats(at) if out.payee in self.to_payee_24h else (0, 0, 0)
        )
        gap = (at - call.end) / 60 if call else 0.0
        known_for_h, step_up = self.relationship(seen, out)
        suspicious_call = call is not None and (call.reported or not call.caller_known)
        since_sim = _hours_since(self.sim_change_at, at)
        since_device = _hours_since(self.new_device_at, at)
        recent_device = since_device * 3600 <= DEVICE_SEQUENCE_S
        return [
            math.log10(max(out.amount, 1.0)),
            math.log10(max(out.amount, 1.0)) - typical,
            float(min(prior, PRIOR_CAP)),
            float(out.wallet),
            float(out.payee_new),
            float(min(max(payee_prior, 0), 50)),
            log10(to_payee),
            float(n10),
            float(n1),
            log10(s1),
            float(n24),
            log10(s24),
            float(self.new_payees_24h.stats(at)[0]),
            known_for_h,
            step_up,
            log10(self.to_recent_payees_7d.stats(at)[1]),
            float(call is not None),
            (call.end - call.start) / 60 if call else 0.0,
            float(call is not None and not call.caller_known),
            float(call is not None and call.reported),
            float(call is not None and is_international(call.caller)),
            float(call is not None and is_virtual_operator(call.caller)),
            float(call is not None and is_fixed_line(call.caller)),
            max(min(gap, 60.0), -180.0),
            float(self.unknown_calls_24h.stats(at)[0]),
            float(self.long_unknown_calls_7d.stats(at)[0]),
            float(self.reported_calls_7d.stats(at)[0]),
            float(self.link_sms_7d.stats(at)[0]),
            since_sim,
            since_device,
            # The sequence's strength in one feature: the minutes of the call, so one split can tell it.
            min((call.end - call.start) / 60, 120.0)
            if call is not None and suspicious_call and out.payee_new
            else 0.0,
            float(recent_device and self.link_before_device),
            float(since_sim < 24 and (out.payee_new or since_device <= since_sim)),
            float(
                out.wallet
                and out.payee_new
                and self.topup_at is not None
                and 0 <= at - self.topup_at <= SEQUENCE_S
            ),
            float(self.telecom_at is not None and at - self.telecom_at <= WEEK_S),
        ], call


def _any_in(times: list[float], start: float, end: float) -> bool:
    """Whether any of the sorted times lies in [start, end]."""
    return bisect.bisect_left(times, start) < bisect.bisect_right(times, end)


def _hours_since(when: float | None, at: float) -> float:
    """Hours from `when` to `at`, capped at SINCE_CAP_H (also for never, or for a time after `at`)."""
    if when is None or when > at:
        return SINCE_CAP_H
    return min((at - when) / 3600, SINCE_CAP_H)
