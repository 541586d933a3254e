"""Normal activity of the population: calls, SMS, transfers, payments, top-ups, withdrawals, logins,
and the rare SIM change or new account; counterparts are mostly the person's usual ones. The world of
the run (`World`) sets the amounts, the share of strangers and of new payees."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from services.simulator.model import BANKS, IdSource, SimEvent, money, stamp
from services.simulator.population import BANK_BIN, PREFIXES, Numbers, Person, Population, fixed_line
from services.simulator.world import World

# Share of each kind of event in normal traffic (about 25 a person-day: 7 calls, 6 SMS, 3 logins,
# 2 transfers, 5 wallet payments); SIM changes and new accounts are rare on purpose.
MIX: dict[str, float] = {
    "telecom.call": 0.29,
    "telecom.sms": 0.23,
    "telecom.sim_change": 0.0002,
    "bank.transfer": 0.08,
    "bank.login": 0.12,
    "bank.account_opened": 0.0003,
    "payment.payment": 0.21,
    "payment.topup": 0.045,
    "payment.withdrawal": 0.025,
}
MAX_NORMAL_TRANSFER = 50_000.0
WALLET_LIMIT = 50_000.0  # the most a person pays from a wallet at once; larger sums go through the bank
STRANGER_VIRTUAL_SHARE = 0.10  # strangers on virtual-operator numbers (couriers, sales)
STRANGER_ABROAD_SHARE = 0.03
STRANGER_FIXED_SHARE = 0.15  # strangers on landlines (a clinic, an office, a shop's front desk)
NEW_PRIVATE_PAYEE_SHARE = 0.25  # of new payees: a private seller's account never seen before
NEW_PERSON_PAYEE_SHARE = 0.15  # of new payees: someone of the population
# Service numbers: banks' call centres, the tax office, hospitals. Many people hear from them.
SERVICE_NUMBERS = ("+8695588", "+8695533", "+8695599", "+8695566", "+8612366", "+8612320", "+8612345")


class WalletChannel:
    """Which payments to a person or business a wallet holder makes from the wallet: the world's share of
    them, up to WALLET_LIMIT. Its own random stream, so that the choice moves no other draw of a seed."""

    def __init__(self, share: float, rng: random.Random) -> None:
        self.share = share
        self.rng = rng

    def pays(self, person: Person, amount: float) -> bool:
        return person.wallet is not None and amount <= WALLET_LIMIT and self.rng.random() < self.share


def lognormal(rng: random.Random, median: float, sigma: float, low: float, high: float) -> float:
    return min(max(median * math.exp(rng.gauss(0, sigma)), low), high)


def stranger(rng: random.Random, people: dict[str, Person]) -> str:
    """A number outside the population; not remembered, so a long run does not grow memory."""
    roll = rng.random()
    if roll < STRANGER_ABROAD_SHARE:
        return f"+{rng.choice(('1', '44', '852', '60', '95'))}{rng.randrange(10**9):09d}"
    if roll < STRANGER_ABROAD_SHARE + STRANGER_VIRTUAL_SHARE:
        return f"+86{rng.choice(('170', '171', '162', '165', '167'))}{rng.randrange(10**8):08d}"
    if roll < STRANGER_ABROAD_SHARE + STRANGER_VIRTUAL_SHARE + STRANGER_FIXED_SHARE:
        return fixed_line(rng)
    while True:
        phone = f"+86{rng.choice(PREFIXES)}{rng.randrange(10**9):09d}"
        if phone not in people:
            return phone


class NormalTraffic:
    def __init__(
        self, population: Population, ids: IdSource, *, seed: int = 1, world: World | None = None
    ) -> None:
        self.population = population
        self.ids = ids
        self.world = world or World.draw(seed)
        self.rng = random.Random(f"normal:{seed}:{ids.run_tag}")
        self.wallet = WalletChannel(
            self.world.wallet_share, random.Random(f"normal-wallet:{seed}:{ids.run_tag}")
        )
        self.numbers = Numbers(self.rng, population.numbers.used)
        builders: dict[str, Callable[[Person, datetime], SimEvent]] = {
            "telecom.call": self._call,
            "telecom.sms": self._sms,
            "telecom.sim_change": self._sim_change,
            "bank.transfer": self._transfer,
            "bank.login": self._login,
            "bank.account_opened": self._account_opened,
            "payment.payment": self._payment,
            "payment.topup": self._topup,
            "payment.withdrawal": self._withdrawal,
        }
        self._kinds = list(MIX)
        self._weights = list(itertools.accumulate(MIX[k] for k in self._kinds))
        self._builders = builders

    def next(self, now: datetime) -> SimEvent:
        rng = self.rng
        kind = self._kinds[bisect.bisect_right(self._weights, rng.random() * self._weights[-1])]
        pop = self.population
        if kind.startswith("payment."):
            people, cum = pop.wallet_holders, pop.cum_wallet_activity
        else:
            people, cum = pop.people, pop.cum_activity
        # People are drawn in proportion to their pace: some are many times busier than others.
        person = people[min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(people) - 1)]
        return self._builders[kind](person, now)

    def _base(self, kind: str, occurred_at: datetime) -> dict[str, object]:
        return {"type": kind, "event_id": self.ids.next(), "occurred_at": stamp(occurred_at)}

    def call(
        self, person: Person, now: datetime, caller: str, seconds: int, reported: bool = False
    ) -> SimEvent:
        """A call that ends at `now`: an operator reports it then, dated at its start (as CDRs are)."""
        body = self._base("telecom.call", now - timedelta(seconds=seconds))
        body.update(caller=caller, callee=person.phone, duration_s=seconds, caller_reported=reported)
        return SimEvent(person.operator, person.phone, body)

    def _call(self, person: Person, now: datetime) -> SimEvent:
        rng, w = self.rng, self.world
        if rng.random() >= w.stranger_call_share:
            return self.call(person, now, rng.choice(person.contacts), int(lognormal(rng, 90, 1.0, 3, 3600)))
        # Unknown numbers: deliveries, sales, wrong numbers, services; mostly short, rarely reported.
        caller = (
            rng.choice(SERVICE_NUMBERS) if rng.random() < 0.15 else stranger(rng, self.population.by_phone)
        )
        if rng.random() < w.long_stranger_call_share:
            duration = lognormal(rng, 600, 0.6, 300, 3600)
        else:
            duration = lognormal(rng, 25, 0.9, 1, 600)
        return self.call(person, now, caller, int(duration), reported=rng.random() < 0.005)

    def sms(self, person: Person, now: datetime, sender: str, link: bool) -> SimEvent:
        body = self._base("telecom.sms", now)
        body.update(sender=sender, recipient=person.phone, contains_link=link)
        return SimEvent(person.operator, person.phone, body)

    def _sms(self, person: Person, now: datetime) -> SimEvent:
        rng = self.rng
        if rng.random() < 0.5:
            return self.sms(person, now, rng.choice(person.contacts), False)
        # Notices from services (banks, deliveries, shops) and strangers, some with a link.
        sender = (
            rng.choice(SERVICE_NUMBERS) if rng.random() < 0.4 else stranger(rng, self.population.by_phone)
        )
        return self.sms(person, now, sender, rng.random() < self.world.stranger_link_share)

    def _sim_change(self, person: Person, now: datetime) -> SimEvent:
        body = self._base("telecom.sim_change", now)
        body.update(subscriber=person.phone)
        return SimEvent(person.operator, person.phone, body)

    def transfer(
        self, person: Person, now: datetime, to_institution: str, to_account: str, amount: float
    ) -> SimEvent:
        body = self._base("bank.transfer", now)
        body.update(
            payer_account=person.account,
            payer_phone=person.phone,
            payee_account=to_account,
            payee_institution=to_institution,
            amount=money(amount),
            currency="CNY",
            channel=self.rng.choices(("mobile", "online", "counter", "atm"), (0.8, 0.1, 0.05, 0.05))[0],
        )
        return SimEvent(person.bank, person.phone, body)

    def amount(self) -> float:
        return lognormal(self.rng, self.world.amount_median, self.world.amount_sigma, 1, MAX_NORMAL_TRANSFER)

    def new_payee(self) -> tuple[str, str]:
        """A payee the person never paid: mostly a shop or service; now and then a private seller's
        account nobody here paid before (not remembered: memory stays flat), or someone they know."""
        rng, pop = self.rng, self.population
        roll = rng.random()
        if roll < NEW_PRIVATE_PAYEE_SHARE:
            bank = rng.choice(BANKS)
            return bank, f"{BANK_BIN[bank]}{rng.randrange(10**15):015d}"
        if roll < NEW_PRIVATE_PAYEE_SHARE + NEW_PERSON_PAYEE_SHARE:
            other = rng.choice(pop.people)
            return other.bank, other.account
        business = pop.business(rng.choice(("shop", "shop", "service")), rng)
        return business.institution, business.account

    def _transfer(self, person: Person, now: datetime) -> SimEvent:
        rng = self.rng
        if rng.random() < self.world.new_payee_share:
            institution, account = self.new_payee()
        else:
            payee = rng.choice(person.payees)
            institution, account = payee.institution, payee.account
        amount = self.amount()
        if self.wallet.pays(person, amount):
            rng.random()  # a transfer's draw of its channel, made either way: later draws stay
            return self.payment(person, now, institution, account, amount)
        return self.transfer(person, now, institution, account, amount)

    def login(self, person: Person, now: datetime, new_device: bool) -> SimEvent:
        body = self._base("bank.login", now)
        body.update(
            account=person.account,
            holder_phone=person.phone,
            device_id=f"dev-{self.rng.getrandbits(48):012x}" if new_device else person.device_id,
            new_device=new_device,
        )
        return SimEvent(person.bank, person.phone, body)

    def _login(self, person: Person, now: datetime) -> SimEvent:
        return self.login(person, now, self.rng.random() < 0.01)

    def _account_opened(self, person: Person, now: datetime) -> SimEvent:
        body = self._base("bank.account_opened", now)
        body.update(account=self.numbers.bank_account(person.bank), holder_phone=person.phone)
        return SimEvent(person.bank, person.phone, body)

    def payment(
        self, person: Person, now: datetime, institution: str, account: str, amount: float
    ) -> SimEvent:
        assert person.wallet is not None
        body = self._base("payment.payment", now)
        body.update(
            payer_account=person.wallet,
            payer_phone=person.phone,
            payee_account=account,
            payee_institution=institution,
            amount=money(amount),
            currency="CNY",
        )
        return SimEvent(person.wallet_provider, person.phone, body)

    def _payment(self, person: Person, now: datetime) -> SimEvent:
        merchant = self.rng.choice(self.population.merchants)
        amount = lognormal(self.rng, 40, 1.0, 0.5, 5000)
        return self.payment(person, now, merchant.institution, merchant.account, amount)

    def topup(self, person: Person, now: datetime, amount: float) -> SimEvent:
        assert person.wallet is not None
        body = self._base("payment.topup", now)
        body.update(
            account=person.wallet,
            holder_phone=person.phone,
            amount=money(amount),
            source_account=person.account,
        )
        return SimEvent(person.wallet_provider, person.phone, body)

    def _topup(self, person: Person, now: datetime) -> SimEvent:
        return self.topup(person, now, lognormal(self.rng, 200, 0.8, 10, 10_000))

    def _withdrawal(self, person: Person, now: datetime) -> SimEvent:
        assert person.wallet is not None
        body = self._base("payment.withdrawal", now)
        body.update(
            account=person.wallet,
            holder_phone=person.phone,
            amount=money(lognormal(self.rng, 150, 0.8, 10, 10_000)),
            destination_account=person.account,
        )
        return SimEvent(person.wallet_provider, person.phone, body)
