"""An independent world to test the scorer on: a Chinese prefecture's people living ordinary days (calls,
SMS, wallet payments, bank transfers), some of them scammed, some doing the unusual-but-honest things that
look like scams. Written from the public event format only (docs/integration.md, streams/schemas/events.py),
not from the project's simulator, so that it shares none of the simulator's habits.

The world is seeded and draws its own parameters from wide ranges (`Params.draw`), so two seeds are two
different prefectures, not two samples of one. Events come out as (reported_at, SimEvent) in report-time
order; ground truth (scam episodes, hard negatives) is kept on the side (`World.episodes`, `World.negatives`).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from services.simulator.model import BANKS, INSTITUTIONS, PAYMENTS, TELECOMS, SimEvent

CST = timezone(timedelta(hours=8))
DAY = 86_400.0
HOUR = 3600.0
MINUTE = 60.0
# Payee banks outside Stopline (rural co-operative banks, a postal bank, far-away city banks): accepted
# as payee institutions, never reporting.
OUTSIDE_BANKS = ("rcb-prefecture", "postal-savings", "citybank-far", "village-bank")
# When people do things: a weight per hour of the day (CST), a quiet night and three busy bumps.
HOURS = (1, 0.5, 0.3, 0.2, 0.2, 0.5, 2, 5, 8, 7, 6, 7, 9, 8, 6, 6, 7, 8, 10, 10, 9, 7, 5, 2.5)
_HOUR_CUM = list(itertools.accumulate(HOURS))

Payee = tuple[str, str]  # (institution id, account)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, CST).isoformat(timespec="milliseconds")


def money(x: float, *, round_to: int = 0) -> str:
    """A decimal string; scam and large honest amounts are often round numbers."""
    x = max(x, 0.01)
    if round_to:
        x = max(round_to, round(x / round_to) * round_to)
    return f"{x:.2f}"


def lognormal(rng: random.Random, median: float, spread: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, median * math.exp(rng.gauss(0, spread))))


@dataclass(frozen=True)
class Params:
    """One prefecture: shares, rates and habits, each drawn from a wide range per run."""

    telecom_share: dict[str, float]
    bank_share: dict[str, float]
    wallet_share: dict[str, float]
    silent: frozenset[str]
    calls: float  # received calls per person-day
    sms: float
    payments: float
    transfers: float
    logins: float
    new_merchant_p: float  # share of everyday payments to a merchant the person never paid
    unknown_call_p: float  # share of received calls from numbers not in the person's circle
    link_sms_p: float  # share of (service) SMS with a link: couriers, shops, banks all send them
    late_report_p: float
    scams_per_1000_day: float
    typology_weight: dict[str, float]
    negatives_per_1000_day: dict[str, float]

    @staticmethod
    def draw(rng: random.Random) -> Params:
        def shares(names: tuple[str, ...], alpha: float) -> dict[str, float]:
            w = [rng.gammavariate(alpha, 1) for _ in names]
            return {n: x / sum(w) for n, x in zip(names, w, strict=True)}

        # Partial coverage: one operator, two banks, sometimes the second wallet report nothing.
        silent = {rng.choice(TELECOMS[1:]), *rng.sample(BANKS[2:], 2)}
        if rng.random() < 0.3:
            silent.add(PAYMENTS[1])
        typologies = ScamTypes
        return Params(
            telecom_share=dict(
                zip(TELECOMS, sorted(shares(TELECOMS, 3).values(), reverse=True), strict=True)
            ),
            bank_share=shares(BANKS, 1.5),
            wallet_share={PAYMENTS[0]: rng.uniform(0.55, 0.85), PAYMENTS[1]: 1.0},  # cumulative
            silent=frozenset(silent),
            calls=rng.uniform(4, 9),
            sms=rng.uniform(4, 8),
            payments=rng.uniform(7, 14),
            transfers=rng.uniform(0.2, 0.8),
            logins=rng.uniform(0.5, 2),
            new_merchant_p=rng.uniform(0.12, 0.35),
            unknown_call_p=rng.uniform(0.1, 0.3),
            link_sms_p=rng.uniform(0.15, 0.4),
            late_report_p=rng.uniform(0.003, 0.03),
            scams_per_1000_day=rng.uniform(3.5, 6.0),
            typology_weight={t: rng.uniform(0.5, 1.5) for t in typologies},
            negatives_per_1000_day={
                "unknown_long_call": rng.uniform(6, 14),
                "large_first_transfer": rng.uniform(3, 8),
                "group_purchase": rng.uniform(0.8, 2),
                "landlord": rng.uniform(0.8, 2),
                "payroll": rng.uniform(0.5, 1.5),
                "new_device": rng.uniform(3, 8),
                "travel": rng.uniform(2, 5),
            },
        )


ScamTypes = (
    "police_impersonation",
    "refund_service",
    "pig_butchering",
    "job_task",
    "loan_fee",
    "account_takeover",
    "sim_swap",
    "group_investment",  # many victims of one chat group pay the same collector within the hour
)


@dataclass(slots=True)
class Person:
    idx: int
    phone: str
    telecom: str
    age: str  # young, mid, old: whom each scam reaches
    banks: list[Payee]  # own accounts, first the main one
    devices: list[str]  # per bank, the phone app's device id
    wallet: Payee
    contacts: list[str]  # phones that call them (family, friends, work)
    merchants: list[Payee]  # where they usually pay
    family: list[Payee]  # accounts they transfer to now and then
    activity: float  # how busy, around 1


@dataclass
class Episode:
    """Ground truth of one scam: the victim's payments and when the money left the first payee account."""

    id: str
    typology: str
    victim: str
    start: float  # its first event (call, SMS, login...) occurred
    payments: list[tuple[str, float, float, str]] = field(default_factory=list)  # ref, at, amount, payee
    money_left_at: float = math.inf  # the first payee forwards the first payment onwards
    refs: set[str] = field(default_factory=set)  # every event of the episode, forwarding included
    collectors: set[str] = field(default_factory=set)  # "institution/account" of its payees
    visible: bool = False  # at least one payment was reported

    @property
    def first_payment_ref(self) -> str:
        return self.payments[0][0]

    @property
    def first_payment_at(self) -> float:
        return self.payments[0][1]

    @property
    def end(self) -> float:
        return max(p[1] for p in self.payments)


@dataclass
class Negative:
    """Ground truth of one hard negative: honest, but looks like a scam (or a mule) to a naive eye."""

    kind: str
    person: str
    ref: str  # the payment that makes it hard
    at: float
    start: float
    end: float
    refs: set[str] = field(default_factory=set)
    account: str | None = None  # "institution/account" for fan-in kinds


class World:
    """The people, their institutions, and every event planned; `events()` streams them in report order."""

    def __init__(self, people: int, days: int, seed: int) -> None:
        self.rng = rng = random.Random(seed)
        self.params = Params.draw(rng)
        self.days = days
        # Midnight CST of a date in late 2026, any weekday.
        self.t0 = datetime(2026, 10, 5, tzinfo=CST).timestamp() + rng.randrange(7) * DAY
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._phones: set[str] = set()
        self._accounts: set[str] = set()
        self.special: list[tuple[float, int, SimEvent]] = []  # planned events (scams, negatives)
        self._sink: list[tuple[float, int, SimEvent]] = self.special
        self.episodes: list[Episode] = []
        self.negatives: list[Negative] = []
        # Merchants: a few big ones most people pay (canteens, supermarket, metro) and many small ones.
        n_merchants = max(20, people // 15)
        self.merchants: list[Payee] = [self.wallet_account(self._wallet_inst()) for _ in range(n_merchants)]
        self.merchant_w = list(itertools.accumulate(1 / (i + 1) ** 0.9 for i in range(n_merchants)))
        self.outsiders = [self.new_phone() for _ in range(max(50, people // 2))]
        self.people = [self._person(i) for i in range(people)]
        self.by_phone = {q.phone: q for q in self.people}
        # Some people use each other's accounts as family payees and call each other.
        for q in self.people:
            q.contacts += [rng.choice(self.people).phone for _ in range(rng.randint(3, 12))]
            if rng.random() < 0.5:
                q.family.append(rng.choice(rng.choice(self.people).banks))

    # --- identities ------------------------------------------------------------------------------------

    def new_phone(self) -> str:
        while True:
            phone = f"+861{self.rng.choice('3456789')}{self.rng.randrange(10**9):09d}"
            if phone not in self._phones:
                self._phones.add(phone)
                return phone

    def bank_account(self, bank: str) -> Payee:
        while True:
            acct = f"62{self.rng.randrange(10**15):015d}"
            if acct not in self._accounts:
                self._accounts.add(acct)
                return bank, acct

    def wallet_account(self, inst: str) -> Payee:
        while True:
            acct = f"{'2088' if inst == PAYMENTS[0] else 'wx'}{self.rng.randrange(10**12):012d}"
            if acct not in self._accounts:
                self._accounts.add(acct)
                return inst, acct

    def _bank(self) -> str:
        names = list(self.params.bank_share)
        return self.rng.choices(names, weights=list(self.params.bank_share.values()))[0]

    def _wallet_inst(self) -> str:
        return PAYMENTS[0] if self.rng.random() < self.params.wallet_share[PAYMENTS[0]] else PAYMENTS[1]

    def _person(self, idx: int) -> Person:
        rng, p = self.rng, self.params
        telecom = rng.choices(list(p.telecom_share), weights=list(p.telecom_share.values()))[0]
        banks: list[Payee] = []
        for _ in range(rng.choices((1, 2, 3), weights=(0.45, 0.4, 0.15))[0]):
            bank = self._bank()
            if bank not in (b for b, _ in banks):
                banks.append(self.bank_account(bank))
        merchants = [self.merchants[self._merchant_idx()] for _ in range(rng.randint(4, 15))]
        family = [self.bank_account(rng.choice((*BANKS, *OUTSIDE_BANKS))) for _ in range(rng.randint(1, 4))]
        return Person(
            idx=idx,
            phone=self.new_phone(),
            telecom=telecom,
            age=rng.choices(("young", "mid", "old"), weights=(0.3, 0.45, 0.25))[0],
            banks=banks,
            devices=[f"dev-{rng.getrandbits(48):012x}" for _ in banks],
            wallet=self.wallet_account(self._wallet_inst()),
            contacts=[rng.choice(self.outsiders) for _ in range(rng.randint(5, 25))],
            merchants=merchants,
            family=family,
            activity=lognormal(rng, 1.0, 0.35, 0.3, 3.0),
        )

    def _merchant_idx(self) -> int:
        x = self.rng.random() * self.merchant_w[-1]
        return min(len(self.merchants) - 1, bisect.bisect_right(self.merchant_w, x))

    # --- time ------------------------------------------------------------------------------------------

    def time_of_day(self, day: int) -> float:
        """A moment of `day` with people's daily rhythm."""
        hour = bisect.bisect_right(_HOUR_CUM, self.rng.random() * _HOUR_CUM[-1])
        return self.t0 + day * DAY + hour * HOUR + self.rng.random() * HOUR

    def weekday(self, day: int) -> int:
        return datetime.fromtimestamp(self.t0 + day * DAY + 12 * HOUR, CST).weekday()

    # --- events ----------------------------------------------------------------------------------------

    def _delay(self, source: str) -> float:
        """How long after it happened an institution reports an event: seconds to minutes, now and then
        much later (a batch job, an outage)."""
        rng = self.rng
        if rng.random() < self.params.late_report_p:
            return rng.uniform(10 * MINUTE, 3 * HOUR)
        median = {"telecom": 20.0, "bank": 40.0, "payment": 8.0}[source]
        return lognormal(rng, median, 1.0, 1.0, 15 * MINUTE)

    def _emit(
        self, inst: str, phone: str, body: dict[str, Any], at: float, scenario: str | None, extra: float = 0.0
    ) -> str:
        """The event's ref; the event itself only if its institution reports to Stopline."""
        eid = f"fw{next(self._ids):010d}"
        ref = f"{inst}:{eid}"
        if inst in self.params.silent or inst not in INSTITUTIONS:
            return ref
        body = {"type": body.pop("type"), "event_id": eid, "occurred_at": iso(at), **body}
        reported = at + extra + self._delay(INSTITUTIONS[inst])
        self._sink.append((reported, next(self._seq), SimEvent(inst, phone, body, scenario)))
        return ref

    def reported(self, ref: str) -> bool:
        return ref.split(":", 1)[0] not in self.params.silent and ref.split(":", 1)[0] in INSTITUTIONS

    def call(
        self,
        at: float,
        callee: Person,
        caller: str,
        duration_s: int,
        *,
        scenario: str | None = None,
        caller_reported: bool = False,
    ) -> str:
        # Reported when it ends, dated at its start.
        body: dict[str, Any] = {
            "type": "telecom.call",
            "caller": caller,
            "callee": callee.phone,
            "duration_s": int(duration_s),
        }
        if caller_reported:
            body["caller_reported"] = True
        return self._emit(callee.telecom, callee.phone, body, at, scenario, extra=duration_s)

    def sms(self, at: float, to: Person, sender: str, link: bool, *, scenario: str | None = None) -> str:
        body = {"type": "telecom.sms", "sender": sender, "recipient": to.phone, "contains_link": link}
        return self._emit(to.telecom, to.phone, body, at, scenario)

    def sim_change(self, at: float, who: Person, *, scenario: str | None = None) -> str:
        return self._emit(
            who.telecom, who.phone, {"type": "telecom.sim_change", "subscriber": who.phone}, at, scenario
        )

    def transfer(
        self,
        at: float,
        phone: str,
        payer: Payee,
        payee: Payee,
        amount: str,
        *,
        channel: str = "mobile",
        scenario: str | None = None,
    ) -> str:
        body = {
            "type": "bank.transfer",
            "payer_account": payer[1],
            "payer_phone": phone,
            "payee_account": payee[1],
            "payee_institution": payee[0],
            "amount": amount,
            "channel": channel,
        }
        return self._emit(payer[0], phone, body, at, scenario)

    def pay(
        self, at: float, phone: str, wallet: Payee, payee: Payee, amount: str, *, scenario: str | None = None
    ) -> str:
        body = {
            "type": "payment.payment",
            "payer_account": wallet[1],
            "payer_phone": phone,
            "payee_account": payee[1],
            "payee_institution": payee[0],
            "amount": amount,
        }
        return self._emit(wallet[0], phone, body, at, scenario)

    def money_out(
        self, at: float, phone: str, source: Payee, payee: Payee, amount: str, *, scenario: str | None = None
    ) -> str:
        """Out of a bank account (a transfer) or a wallet (a payment), whichever `source` is."""
        if source[0] in PAYMENTS:
            return self.pay(at, phone, source, payee, amount, scenario=scenario)
        return self.transfer(at, phone, source, payee, amount, scenario=scenario)

    def topup(
        self, at: float, phone: str, wallet: Payee, source: Payee, amount: str, *, scenario: str | None = None
    ) -> str:
        body = {
            "type": "payment.topup",
            "account": wallet[1],
            "holder_phone": phone,
            "amount": amount,
            "source_account": source[1],
        }
        return self._emit(wallet[0], phone, body, at, scenario)

    def withdraw(
        self, at: float, phone: str, wallet: Payee, dest: Payee, amount: str, *, scenario: str | None = None
    ) -> str:
        body = {
            "type": "payment.withdrawal",
            "account": wallet[1],
            "holder_phone": phone,
            "amount": amount,
            "destination_account": dest[1],
        }
        return self._emit(wallet[0], phone, body, at, scenario)

    def login(
        self, at: float, phone: str, account: Payee, device: str, new: bool, *, scenario: str | None = None
    ) -> str:
        body = {
            "type": "bank.login",
            "account": account[1],
            "holder_phone": phone,
            "device_id": device,
            "new_device": new,
        }
        return self._emit(account[0], phone, body, at, scenario)

    def account_opened(self, at: float, phone: str, account: Payee, *, scenario: str | None = None) -> str:
        body = {"type": "bank.account_opened", "account": account[1], "holder_phone": phone}
        return self._emit(account[0], phone, body, at, scenario)

    # --- ordinary life ---------------------------------------------------------------------------------

    def _routine(self, day: int) -> list[tuple[float, int, SimEvent]]:
        """A day of everyone's ordinary events, built when the stream reaches it (it is most of the
        traffic: kept out of memory until then)."""
        out: list[tuple[float, int, SimEvent]] = []
        self._sink = out
        rng, p = self.rng, self.params
        weekend = self.weekday(day) >= 5
        for q in self.people:
            a = q.activity * (1.15 if weekend else 1.0)
            for _ in range(_poisson(rng, p.calls * a * (0.8 if weekend else 1.0))):
                at = self.time_of_day(day)
                if rng.random() < p.unknown_call_p:
                    # Couriers, ride drivers, sales calls, a clinic: strangers, mostly short.
                    caller = self.new_phone() if rng.random() < 0.7 else rng.choice(self.outsiders)
                    dur = int(lognormal(rng, 40, 1.0, 3, 1800))
                else:
                    caller = rng.choice(q.contacts)
                    dur = int(lognormal(rng, 90, 1.2, 5, 5400))
                self.call(at, q, caller, dur)
            for _ in range(_poisson(rng, p.sms * a)):
                at = self.time_of_day(day)
                if rng.random() < 0.8:  # service numbers: banks' notices, couriers, shops, codes
                    sender = f"+86106{rng.randrange(10**8):08d}"
                    self.sms(at, q, sender, rng.random() < p.link_sms_p)
                else:
                    self.sms(at, q, rng.choice(q.contacts), rng.random() < 0.05)
            for _ in range(_poisson(rng, p.logins * a)):
                i = rng.randrange(len(q.banks))
                self.login(self.time_of_day(day), q.phone, q.banks[i], q.devices[i], False)
            for _ in range(_poisson(rng, p.payments * a)):
                at = self.time_of_day(day)
                if rng.random() < p.new_merchant_p:
                    payee = self.merchants[rng.randrange(len(self.merchants))]
                else:
                    payee = rng.choice(q.merchants)
                # Breakfast, lunch, groceries, taxi; now and then clothes, a phone, a bill.
                amount = (
                    lognormal(rng, 28, 0.9, 1, 3000)
                    if rng.random() < 0.93
                    else lognormal(rng, 400, 1.0, 50, 20000)
                )
                self.pay(at, q.phone, q.wallet, payee, money(amount))
            for _ in range(_poisson(rng, p.transfers * a)):
                at = self.time_of_day(day)
                src = rng.choice(q.banks)
                roll = rng.random()
                if roll < 0.6:
                    payee, amount = rng.choice(q.family), lognormal(rng, 800, 1.0, 50, 20000)
                    text = money(amount, round_to=100 if rng.random() < 0.6 else 0)
                elif roll < 0.8:  # to one's own account elsewhere, or a credit card
                    payee = rng.choice([b for b in q.banks if b != src] or [self.bank_account(self._bank())])
                    text = money(lognormal(rng, 2000, 1.0, 100, 50000), round_to=100)
                else:  # someone new: a repairman, a deposit, a friend's friend
                    payee = self.bank_account(rng.choice((*BANKS, *OUTSIDE_BANKS)))
                    text = money(lognormal(rng, 600, 1.1, 20, 30000))
                self.transfer(
                    at,
                    q.phone,
                    src,
                    payee,
                    text,
                    channel="mobile" if rng.random() < 0.9 else rng.choice(("online", "counter", "atm")),
                )
            if rng.random() < 0.08 * a:  # topping up the wallet from the bank
                self.topup(
                    self.time_of_day(day),
                    q.phone,
                    q.wallet,
                    q.banks[0],
                    money(lognormal(rng, 500, 0.8, 50, 10000), round_to=50),
                )
        self._sink = self.special
        return out

    # --- the stream ------------------------------------------------------------------------------------

    def events(self) -> Iterator[tuple[float, SimEvent]]:
        """Every reported event, in report-time order (ties in the order they were made)."""
        special = sorted(self.special, key=lambda e: (e[0], e[1]))
        i = 0
        heap: list[tuple[float, int, SimEvent]] = []
        for day in range(self.days):
            for item in self._routine(day):
                heapq.heappush(heap, item)
            horizon = self.t0 + (day + 1) * DAY  # nothing later can be reported before this
            while i < len(special) and special[i][0] < horizon:
                heapq.heappush(heap, special[i])
                i += 1
            while heap and heap[0][0] < horizon:
                at, _, ev = heapq.heappop(heap)
                yield at, ev
        for item in special[i:]:
            heapq.heappush(heap, item)
        while heap:
            at, _, ev = heapq.heappop(heap)
            yield at, ev


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: the rates here are small.
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def build(people: int, days: int, seed: int) -> World:
    """The world with its scams and hard negatives planned (their events and ground truth)."""
    from models.foreign import negatives, scams

    world = World(people, days, seed)
    scams.plan(world)
    negatives.plan(world)
    return world
