"""Scam typologies with ground truth: impersonation of police or customer service, investment scam,
part-time "order brushing" job scam, loan scam, multi-layer mule networks, scams paid and cashed out
through wallets, and account takeovers without a call (a link SMS, then a login from a new device; a SIM
card swapped, then transfers). docs/simulator.md describes each.

Every parameter is drawn from a wide range (RANGES, reported in the model card) so that a model learns the
behaviour, not one script. Victims are ordinary people of the population, with their usual history; the
money goes to collection accounts that are fresh or recruited (real people's aged accounts), shared by
several scams at once, and moves on to further layers after a delay, as in the cases police follow.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.simulator.model import BANKS, PAYMENTS, SimEvent, money, stamp
from services.simulator.population import Person, fixed_line

if TYPE_CHECKING:
    from services.simulator.scenarios import Scenario, ScenarioFactory

TRAINING_TYPOLOGIES = (
    "impersonation_police",
    "impersonation_service",
    "investment",
    "job_scam",
    "loan",
    "mule_network",
    "wallet_scam",
    "account_takeover",
    "sim_swap",
)
MIN = 60.0
HOUR = 3600.0
DAY = 86_400.0

# Parameter ranges (seconds, CNY, counts); the model card and the report print this table.
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "impersonation_police": {
        "call_minutes": (10, 120),
        "pay_after_call_min": (0.5, 60),
        "amount_total": (3_000, 300_000),
        "transfers": (1, 4),
        "gap_between_transfers_min": (1, 20),
    },
    "impersonation_service": {
        "call_minutes": (5, 60),
        "pay_after_call_min": (0.5, 45),
        "amount_total": (1_000, 80_000),
        "transfers": (1, 5),
        "gap_between_transfers_min": (1, 15),
    },
    "investment": {
        "payments": (3, 10),
        "first_amount": (500, 5_000),
        "growth_per_payment": (1.1, 2.5),
        "gap_between_payments_h": (2, 72),
    },
    "job_scam": {
        "small_tasks": (1, 3),
        "small_amount": (20, 300),
        "big_payments": (2, 5),
        "first_big_amount": (800, 10_000),
        "growth_per_payment": (1.3, 3.0),
        "gap_between_payments_min": (5, 600),
    },
    "loan": {
        "fees": (2, 6),
        "fee_amount": (300, 20_000),
        "gap_between_fees_min": (10, 2_880),
        "call_before_fee_share": (0.3, 0.8),
    },
    "mule_network": {
        "victims": (5, 30),
        "collection_span_min": (10, 360),
        "victim_amount": (1_000, 50_000),
        "payout_after_min": (2, 60),
        "layers": (2, 4),
        "accounts_per_layer": (1, 4),
    },
    "wallet_scam": {
        "call_minutes": (3, 60),
        "amount_total": (500, 30_000),
        "payments": (1, 3),
        "topup_to_payment_min": (1, 30),
        "cash_out_after_min": (3, 120),
    },
    "account_takeover": {
        "link_to_login_min": (2, 600),
        "login_to_transfer_min": (0.5, 20),
        "amount_total": (2_000, 150_000),
        "transfers": (1, 4),
        "gap_between_transfers_min": (0.5, 10),
    },
    "sim_swap": {
        "swap_to_transfer_min": (5, 240),
        "amount_total": (3_000, 200_000),
        "transfers": (1, 5),
        "gap_between_transfers_min": (0.5, 15),
    },
}
PAYOUT_AFTER_S = (2 * MIN, 6 * HOUR)  # a collection account pays on what it received after this delay
PAYOUT_SHARE = (0.70, 0.98)
RECRUITED_SHARE = 0.3  # collection accounts that are real people's accounts, rented or sold
POOL_USES = (3, 12)  # scams sharing one collection account before it is dropped
# Share of international, virtual-operator and landline numbers (spoofed: a police station's, a bank's line);
# the rest ordinary mobiles.
FRAUD_NUMBER_KINDS = {
    "impersonation_police": (0.35, 0.25, 0.10),
    "impersonation_service": (0.15, 0.40, 0.10),
    "investment": (0.3, 0.3, 0.0),
    "job_scam": (0.2, 0.4, 0.0),
    "loan": (0.2, 0.4, 0.03),
    "wallet_scam": (0.2, 0.4, 0.0),
    "account_takeover": (0.1, 0.5, 0.0),
}
TEST_PAYMENT = (1.0, 50.0)  # a small first payment to check the account works
INTERNATIONAL = ("+855", "+95", "+63", "+856", "+60")  # where call centres are often based
VIRTUAL = ("170", "171", "162", "165", "167")


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def draw(rng: random.Random, typology: str, name: str, *, integer: bool = False, log: bool = False) -> float:
    low, high = RANGES[typology][name]
    if integer:
        return float(rng.randint(int(low), int(high)))
    return log_uniform(rng, low, high) if log else rng.uniform(low, high)


@dataclass
class Collector:
    """A collection account: who holds it and how many more scams will use it."""

    institution: str
    account: str
    phone: str
    uses_left: int


@dataclass
class Build:
    """A scenario under construction: events at scenario times, and what the truth must say."""

    f: ScenarioFactory
    sid: str
    typology: str
    start: datetime
    steps: list[tuple[float, SimEvent]] = field(default_factory=list)
    victim_refs: list[str] = field(default_factory=list)
    mule_refs: list[str] = field(default_factory=list)
    first_payee_accounts: set[str] = field(default_factory=set)
    first_payout_s: float | None = None
    victims: set[str] = field(default_factory=set)
    params: dict[str, float] = field(default_factory=dict)  # what was drawn: held-out range tests use it

    @property
    def rng(self) -> random.Random:
        return self.f.rng

    def at(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t / self.f.time_scale)

    def emit(self, t: float, event: SimEvent) -> None:
        self.steps.append((t / self.f.time_scale, event))

    def event(self, institution: str, phone: str, kind: str, t: float, **body: Any) -> SimEvent:
        fields: dict[str, Any] = {
            "type": kind,
            "event_id": self.f.ids.next(),
            "occurred_at": stamp(self.at(t)),
        }
        return SimEvent(institution, phone, {**fields, **body}, self.sid)

    def call(self, victim: Person, caller: str, t: float, seconds: float, reported: bool = False) -> float:
        """A call starting at t, reported when it ends; returns its end."""
        seconds = int(seconds)
        event = self.event(
            victim.operator,
            victim.phone,
            "telecom.call",
            t,
            caller=caller,
            callee=victim.phone,
            duration_s=seconds,
            caller_reported=reported,
        )
        self.emit(t + seconds, event)
        return t + seconds

    def sms(self, victim: Person, sender: str, t: float, link: bool = True) -> None:
        self.emit(
            t,
            self.event(
                victim.operator,
                victim.phone,
                "telecom.sms",
                t,
                sender=sender,
                recipient=victim.phone,
                contains_link=link,
            ),
        )

    def login(self, victim: Person, t: float, new_device: bool) -> None:
        device = f"dev-{self.rng.getrandbits(48):012x}" if new_device else victim.device_id
        self.emit(
            t,
            self.event(
                victim.bank,
                victim.phone,
                "bank.login",
                t,
                account=victim.account,
                holder_phone=victim.phone,
                device_id=device,
                new_device=new_device,
            ),
        )

    def sim_change(self, victim: Person, t: float) -> None:
        self.emit(
            t, self.event(victim.operator, victim.phone, "telecom.sim_change", t, subscriber=victim.phone)
        )

    def topup(self, victim: Person, t: float, amount: float) -> SimEvent:
        """The victim's own money into their wallet: not yet lost, so not a victim payment."""
        return self.event(
            victim.wallet_provider,
            victim.phone,
            "payment.topup",
            t,
            account=victim.wallet,
            holder_phone=victim.phone,
            amount=money(amount),
            source_account=victim.account,
        )

    def cash_out(self, merchant: Collector, t: float, amount: float) -> None:
        """A scam's wallet account withdraws to a bank account: the money leaves the first payee."""
        bank = self.rng.choice(BANKS)
        event = self.event(
            merchant.institution,
            merchant.phone,
            "payment.withdrawal",
            t,
            account=merchant.account,
            holder_phone=merchant.phone,
            amount=money(amount),
            destination_account=self.f.numbers.bank_account(bank),
        )
        self.emit(t, event)
        self.mule_refs.append(event.ref)
        self.first_payout_s = t if self.first_payout_s is None else min(self.first_payout_s, t)

    def pay(self, victim: Person, to: Collector, t: float, amount: float, *, wallet: bool = False) -> None:
        """The victim pays a scam account; the account pays most of it on later (one more layer)."""
        if wallet and victim.wallet is not None:
            event = self.payment(victim, (to.institution, to.account), t, amount)
        else:
            event = self.transfer(
                (victim.bank, victim.account, victim.phone), (to.institution, to.account), t, amount
            )
        self.emit(t, event)
        self.victim_refs.append(event.ref)
        self.victims.add(victim.phone)
        self.first_payee_accounts.add(to.account)
        if to.institution not in PAYMENTS:
            later = t + log_uniform(self.rng, *PAYOUT_AFTER_S)
            self.move_on(to, later, amount * self.rng.uniform(*PAYOUT_SHARE))

    def move_on(self, source: Collector, t: float, amount: float) -> Collector:
        """The holder of `source` transfers `amount` to a fresh next-layer account at t."""
        bank = self.rng.choice(BANKS)
        target = Collector(bank, self.f.numbers.bank_account(bank), self.f.numbers.phone(), 1)
        event = self.transfer(
            (source.institution, source.account, source.phone),
            (target.institution, target.account),
            t,
            amount,
        )
        self.emit(t, event)
        self.mule_refs.append(event.ref)
        if source.account in self.first_payee_accounts:
            self.first_payout_s = t if self.first_payout_s is None else min(self.first_payout_s, t)
        return target

    def payment(self, payer: Person, to: tuple[str, str], t: float, amount: float) -> SimEvent:
        """A payment from `payer`'s wallet to `to` (institution, account)."""
        assert payer.wallet is not None
        return self.event(
            payer.wallet_provider,
            payer.phone,
            "payment.payment",
            t,
            payer_account=payer.wallet,
            payer_phone=payer.phone,
            payee_account=to[1],
            payee_institution=to[0],
            amount=money(amount),
            currency="CNY",
        )

    def transfer(self, payer: tuple[str, str, str], to: tuple[str, str], t: float, amount: float) -> SimEvent:
        bank, account, phone = payer
        return self.event(
            bank,
            phone,
            "bank.transfer",
            t,
            payer_account=account,
            payer_phone=phone,
            payee_account=to[1],
            payee_institution=to[0],
            amount=money(amount),
            currency="CNY",
            channel=self.rng.choices(("mobile", "online", "counter"), (0.85, 0.1, 0.05))[0],
        )

    def fraud_number(self) -> str:
        intl, virtual, landline = FRAUD_NUMBER_KINDS[self.typology]
        roll = self.rng.random()
        if roll < intl:
            return self.rng.choice(INTERNATIONAL) + "".join(str(self.rng.randrange(10)) for _ in range(9))
        if roll < intl + virtual:
            return "+86" + self.rng.choice(VIRTUAL) + "".join(str(self.rng.randrange(10)) for _ in range(8))
        if roll < intl + virtual + landline:
            return fixed_line(self.rng)
        return self.f.numbers.phone()

    def finish(self) -> Scenario:
        from services.simulator.scenarios import Scenario, Step

        self.steps.sort(key=lambda s: s[0])
        scenario = Scenario(self.sid, self.typology, self.start, [Step(d, e) for d, e in self.steps])
        first_payout = (
            stamp(self.start + timedelta(seconds=self.first_payout_s / self.f.time_scale))
            if self.first_payout_s is not None
            else None
        )
        scenario.truth = {
            "scenario_id": self.sid,
            "typology": self.typology,
            "started_at": stamp(self.start),
            "event_ids": scenario.event_refs,
            "victim_phones": sorted(self.victims),
            "victim_payment_ids": self.victim_refs,
            "mule_transfer_ids": self.mule_refs,
            "first_payout_at": first_payout,
            "triggering_event_ids": self.victim_refs,
            "params": {k: round(v, 3) for k, v in self.params.items()},
        }
        return scenario


def collector(b: Build, *, fresh: bool = False) -> Collector:
    """A collection account: from the shared pool (several scams at once) unless `fresh`."""
    f = b.f
    pool = f.collectors
    if not fresh and pool and b.rng.random() < 0.8:
        chosen = b.rng.choice(pool)
        chosen.uses_left -= 1
        if chosen.uses_left <= 0:
            pool.remove(chosen)
        return chosen
    if b.rng.random() < RECRUITED_SHARE:
        person = b.rng.choice(f.population.people)
        made = Collector(person.bank, person.account, person.phone, b.rng.randint(*POOL_USES))
    else:
        bank = b.rng.choice(BANKS)
        made = Collector(bank, f.numbers.bank_account(bank), f.numbers.phone(), b.rng.randint(*POOL_USES))
    if not fresh:
        pool.append(made)
    return made


def victim(b: Build, *, wallet: bool = False) -> Person:
    people = b.f.population.wallet_holders if wallet else b.f.population.people
    return b.rng.choice(people)


def impersonation(b: Build) -> None:
    rng, ty = b.rng, b.typology
    person, caller = victim(b), b.fraud_number()
    t = 0.0
    if ty == "impersonation_service" and rng.random() < 0.5:
        b.sms(person, caller if rng.random() < 0.5 else b.fraud_number(), t)
        t += log_uniform(rng, 5 * MIN, 2 * DAY)
    if rng.random() < 0.4:  # a first, shorter contact hours or days before
        b.call(person, caller, t, log_uniform(rng, 30, 8 * MIN))
        t += log_uniform(rng, 10 * MIN, 2 * DAY)
    duration = draw(rng, ty, "call_minutes", log=True) * MIN
    reported = rng.random() < (0.15 if ty == "impersonation_police" else 0.1)
    end = b.call(person, caller, t, duration, reported)
    # A third of victims pay while still on the phone: the call record then arrives after the money left.
    pay_at = (
        t + duration * rng.uniform(0.4, 0.95)
        if rng.random() < 0.35
        else end + draw(rng, ty, "pay_after_call_min", log=True) * MIN
    )
    if rng.random() < 0.6:
        b.login(person, pay_at - rng.uniform(20, 120), new_device=rng.random() < 0.3)
    total = draw(rng, ty, "amount_total", log=True)
    parts = int(draw(rng, ty, "transfers", integer=True))
    b.params.update(call_minutes=duration / MIN, amount_total=total)
    accounts = [collector(b, fresh=True) for _ in range(rng.choice((1, 1, 2)))]
    if ty == "impersonation_service" and rng.random() < 0.4:
        # "to check the refund works": a small first payment, then the large ones.
        b.pay(person, accounts[0], pay_at, draw_test_payment(rng))
        pay_at += log_uniform(rng, 0.5 * MIN, 5 * MIN)
    for i in range(parts):
        b.pay(person, accounts[i % len(accounts)], pay_at, total / parts * rng.uniform(0.6, 1.4))
        pay_at += draw(rng, ty, "gap_between_transfers_min", log=True) * MIN


def draw_test_payment(rng: random.Random) -> float:
    return log_uniform(rng, *TEST_PAYMENT)


def investment(b: Build) -> None:
    rng, ty = b.rng, b.typology
    person, contact = victim(b), b.fraud_number()
    t = 0.0
    if rng.random() < 0.7:
        b.sms(person, contact, t)
        t += log_uniform(rng, 10 * MIN, DAY)
    for _ in range(rng.randint(0, 2)):
        t = b.call(person, contact, t, log_uniform(rng, MIN, 10 * MIN)) + log_uniform(rng, 10 * MIN, DAY)
    amount = draw(rng, ty, "first_amount", log=True)
    b.params.update(amount_total=amount)
    accounts = [collector(b) for _ in range(rng.randint(1, 3))]
    for i in range(int(draw(rng, ty, "payments", integer=True))):
        if rng.random() < 0.2:
            t = b.call(person, contact, t, log_uniform(rng, MIN, 15 * MIN)) + log_uniform(rng, MIN, HOUR)
        b.pay(person, accounts[min(i // 3, len(accounts) - 1)], t, min(amount, 500_000))
        amount *= draw(rng, ty, "growth_per_payment")
        t += draw(rng, ty, "gap_between_payments_h", log=True) * HOUR


def job_scam(b: Build) -> None:
    rng, ty = b.rng, b.typology
    person, recruiter = victim(b), b.fraud_number()
    t = 0.0
    if rng.random() < 0.8:
        b.sms(person, recruiter, t)
    else:
        t = b.call(person, recruiter, t, log_uniform(rng, MIN, 10 * MIN))
    t += log_uniform(rng, 10 * MIN, DAY)
    account = collector(b)
    wallet = rng.random() < 0.3
    for _ in range(int(draw(rng, ty, "small_tasks", integer=True))):
        amount = draw(rng, ty, "small_amount", log=True)
        b.pay(person, account, t, amount, wallet=wallet)
        # The "commission": the scam pays the small task back with a bonus, to win trust.
        refund = b.transfer(
            (account.institution, account.account, account.phone),
            (person.bank, person.account),
            t + log_uniform(rng, 2 * MIN, 20 * MIN),
            amount * rng.uniform(1.05, 1.3),
        )
        b.emit(t + log_uniform(rng, 2 * MIN, 20 * MIN), refund)
        b.mule_refs.append(refund.ref)
        t += draw(rng, ty, "gap_between_payments_min", log=True) * MIN
    amount = draw(rng, ty, "first_big_amount", log=True)
    b.params.update(amount_total=amount)
    for _ in range(int(draw(rng, ty, "big_payments", integer=True))):
        b.pay(person, account, t, min(amount, 300_000), wallet=wallet and amount < 5_000)
        amount *= draw(rng, ty, "growth_per_payment")
        t += draw(rng, ty, "gap_between_payments_min", log=True) * MIN


def loan(b: Build) -> None:
    rng, ty = b.rng, b.typology
    person, officer = victim(b), b.fraud_number()
    t = 0.0
    if rng.random() < 0.6:
        t = b.call(person, officer, t, log_uniform(rng, 3 * MIN, 20 * MIN))
    else:
        b.sms(person, officer, t)
    t += log_uniform(rng, 10 * MIN, DAY)
    accounts = [collector(b) for _ in range(rng.randint(1, 2))]
    call_share = draw(rng, ty, "call_before_fee_share")
    for i in range(int(draw(rng, ty, "fees", integer=True))):
        if rng.random() < call_share:
            t = b.call(person, officer, t, log_uniform(rng, 2 * MIN, 15 * MIN)) + log_uniform(
                rng, MIN, 30 * MIN
            )
        fee = draw(rng, ty, "fee_amount", log=True)
        b.params.setdefault("amount_total", fee)
        b.pay(person, accounts[i % len(accounts)], t, fee)
        t += draw(rng, ty, "gap_between_fees_min", log=True) * MIN


def mule_network(b: Build) -> None:
    rng, ty = b.rng, b.typology
    first = collector(b, fresh=True)
    b.first_payee_accounts.add(first.account)
    span = draw(rng, ty, "collection_span_min", log=True) * MIN
    payers = rng.sample(b.f.population.people, int(draw(rng, ty, "victims", integer=True)))
    times = sorted(rng.uniform(0, span) for _ in payers)
    received = 0.0
    for person, t in zip(payers, times, strict=True):
        amount = draw(rng, ty, "victim_amount", log=True)
        b.params.setdefault("amount_total", amount)
        received += amount
        event = b.transfer(
            (person.bank, person.account, person.phone), (first.institution, first.account), t, amount
        )
        b.emit(t, event)
        b.victim_refs.append(event.ref)
        b.victims.add(person.phone)
    # Pay-out starts while collection may still run: the first layer keeps little for long.
    t = times[min(len(times) - 1, rng.randint(2, 6))] + draw(rng, ty, "payout_after_min", log=True) * MIN
    layer = [first]
    budget = received * rng.uniform(*PAYOUT_SHARE)
    for _ in range(int(draw(rng, ty, "layers", integer=True)) - 1):
        nxt: list[Collector] = []
        for source in layer:
            k = int(draw(rng, ty, "accounts_per_layer", integer=True))
            for _ in range(k):
                nxt.append(b.move_on(source, t, budget / len(layer) / k))
                t += log_uniform(rng, 20, 10 * MIN)
        layer = nxt[:6]
        budget *= rng.uniform(*PAYOUT_SHARE)
        t += log_uniform(rng, MIN, 30 * MIN)


def wallet_scam(b: Build) -> None:
    """Paid through a wallet: the victim tops the wallet up from the bank, pays a merchant account the
    scammers hold at the payment provider, and they cash it out to a bank account."""
    rng, ty = b.rng, b.typology
    person = victim(b, wallet=True)
    contact = b.fraud_number()
    t = 0.0
    if rng.random() < 0.5:
        b.sms(person, contact, t)
        t += log_uniform(rng, 5 * MIN, 6 * HOUR)
    duration = draw(rng, ty, "call_minutes", log=True) * MIN
    t = b.call(person, contact, t, duration)
    total = draw(rng, ty, "amount_total", log=True)
    b.params.update(call_minutes=duration / MIN, amount_total=total)
    merchant = Collector(
        person.wallet_provider, b.f.numbers.merchant(person.wallet_provider), b.f.numbers.phone(), 1
    )
    payments = int(draw(rng, ty, "payments", integer=True))
    for _ in range(payments):
        amount = total / payments * rng.uniform(0.7, 1.3)
        b.emit(t, b.topup(person, t, amount))
        t += draw(rng, ty, "topup_to_payment_min", log=True) * MIN
        b.pay(person, merchant, t, amount, wallet=True)
        later = t + draw(rng, ty, "cash_out_after_min", log=True) * MIN
        b.cash_out(merchant, later, amount * rng.uniform(*PAYOUT_SHARE))
        t += log_uniform(rng, 2 * MIN, 30 * MIN)


def account_takeover(b: Build) -> None:
    """No call: a link SMS steals the credentials, the fraudster logs in from a new device and transfers
    the money out within minutes, sometimes after a small test payment."""
    rng, ty = b.rng, b.typology
    person = victim(b)
    t = 0.0
    b.sms(person, b.fraud_number(), t)
    t += draw(rng, ty, "link_to_login_min", log=True) * MIN
    b.login(person, t, new_device=True)
    t += draw(rng, ty, "login_to_transfer_min", log=True) * MIN
    total = draw(rng, ty, "amount_total", log=True)
    b.params.update(amount_total=total)
    accounts = [collector(b, fresh=True) for _ in range(rng.choice((1, 1, 2)))]
    if rng.random() < 0.4:
        b.pay(person, accounts[0], t, draw_test_payment(rng))
        t += log_uniform(rng, 0.5 * MIN, 3 * MIN)
    parts = int(draw(rng, ty, "transfers", integer=True))
    for i in range(parts):
        b.pay(person, accounts[i % len(accounts)], t, total / parts * rng.uniform(0.6, 1.4))
        t += draw(rng, ty, "gap_between_transfers_min", log=True) * MIN


def sim_swap(b: Build) -> None:
    """No call: the victim's number moves to the fraudster's SIM (the victim's phone goes quiet), a new
    device logs in with the codes sent to it, and the accounts are emptied."""
    rng, ty = b.rng, b.typology
    person = victim(b)
    t = 0.0
    b.sim_change(person, t)
    t += draw(rng, ty, "swap_to_transfer_min", log=True) * MIN
    if rng.random() < 0.8:
        b.login(person, t - rng.uniform(30, 300), new_device=True)
    total = draw(rng, ty, "amount_total", log=True)
    b.params.update(amount_total=total)
    accounts = [collector(b, fresh=True) for _ in range(rng.randint(1, 3))]
    parts = int(draw(rng, ty, "transfers", integer=True))
    for i in range(parts):
        b.pay(person, accounts[i % len(accounts)], t, total / parts * rng.uniform(0.6, 1.4))
        t += draw(rng, ty, "gap_between_transfers_min", log=True) * MIN


BUILDERS = {
    "impersonation_police": impersonation,
    "impersonation_service": impersonation,
    "investment": investment,
    "job_scam": job_scam,
    "loan": loan,
    "mule_network": mule_network,
    "wallet_scam": wallet_scam,
    "account_takeover": account_takeover,
    "sim_swap": sim_swap,
}


def build(f: ScenarioFactory, sid: str, typology: str, start: datetime) -> Scenario:
    b = Build(f, sid, typology, start)
    BUILDERS[typology](b)
    return b.finish()


def total_victim_amount(scenario: Scenario) -> Decimal:
    refs = set(scenario.truth.get("victim_payment_ids", []))
    return sum((Decimal(s.event.body["amount"]) for s in scenario.steps if s.event.ref in refs), Decimal(0))
