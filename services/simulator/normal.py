"""Normal activity of the population: calls, SMS, transfers, payments, top-ups, withdrawals, logins,
and the rare SIM change or new account; counterparts are mostly the person's usual ones."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from services.simulator.model import BANKS, PAYMENT, IdSource, SimEvent, money, stamp
from services.simulator.population import BANK_BIN, PREFIXES, Numbers, Person, Population

# Share of each kind of event in normal traffic; SIM changes and new accounts are rare on purpose.
MIX: dict[str, float] = {
    "telecom.call": 0.26,
    "telecom.sms": 0.18,
    "telecom.sim_change": 0.002,
    "bank.transfer": 0.12,
    "bank.login": 0.13,
    "bank.account_opened": 0.001,
    "payment.payment": 0.20,
    "payment.topup": 0.05,
    "payment.withdrawal": 0.04,
}
CONTACT_CALL_SHARE = 0.85
NEW_PAYEE_SHARE = 0.08
MAX_NORMAL_TRANSFER = 50_000.0
# Hard negatives: what innocent people do that looks like a scam in one respect.
LONG_STRANGER_CALL_SHARE = 0.04  # a contractor, a doctor, a new colleague: long calls from new numbers
STRANGER_VIRTUAL_SHARE = 0.10  # strangers on virtual-operator numbers (couriers, sales)
STRANGER_ABROAD_SHARE = 0.03
BIG_PURCHASE_SHARE = 0.015  # a car, a deposit, tuition: a large sum to a payee never paid before
BIG_PURCHASE = (5_000.0, 150_000.0)
NEW_PRIVATE_PAYEE_SHARE = 0.3  # of new payees: a private seller's account never seen before
BIG_REGULAR_SHARE = 0.01  # rent, a loan repaid to family: a large sum to someone paid before


def lognormal(rng: random.Random, median: float, sigma: float, low: float, high: float) -> float:
    return min(max(median * math.exp(rng.gauss(0, sigma)), low), high)


class NormalTraffic:
    def __init__(self, population: Population, ids: IdSource, *, seed: int = 1) -> None:
        self.population = population
        self.ids = ids
        self.rng = random.Random(f"normal:{seed}:{ids.run_tag}")
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
        self._weights = [MIX[k] for k in self._kinds]
        self._builders = builders

    def next(self, now: datetime) -> SimEvent:
        kind = self.rng.choices(self._kinds, self._weights)[0]
        pop = self.population
        if kind.startswith("payment."):
            people, cum = pop.wallet_holders, pop.cum_wallet_activity
        else:
            people, cum = pop.people, pop.cum_activity
        # People are drawn in proportion to their activity: heavy users are many times busier than others.
        person = people[min(bisect.bisect_right(cum, self.rng.random() * cum[-1]), len(people) - 1)]
        return self._builders[kind](person, now)

    def _stranger(self) -> str:
        """A number outside the population; not remembered, so a long run does not grow memory."""
        roll = self.rng.random()
        if roll < STRANGER_ABROAD_SHARE:
            return f"+{self.rng.choice(('1', '44', '852', '60', '95'))}{self.rng.randrange(10**9):09d}"
        if roll < STRANGER_ABROAD_SHARE + STRANGER_VIRTUAL_SHARE:
            return f"+86{self.rng.choice(('170', '171', '162', '165', '167'))}{self.rng.randrange(10**8):08d}"
        while True:
            phone = f"+86{self.rng.choice(PREFIXES)}{self.rng.randrange(10**9):09d}"
            if phone not in self.population.by_phone:
                return phone

    def _base(self, kind: str, occurred_at: datetime) -> dict[str, object]:
        return {"type": kind, "event_id": self.ids.next(), "occurred_at": stamp(occurred_at)}

    def _call(self, person: Person, now: datetime) -> SimEvent:
        rng = self.rng
        if rng.random() < CONTACT_CALL_SHARE:
            caller = rng.choice(person.contacts)
            duration = lognormal(rng, 90, 1.0, 3, 3600)
            reported = False
        else:
            # Unknown numbers: deliveries, sales, wrong numbers; mostly short, rarely already reported.
            caller = self._stranger()
            if rng.random() < LONG_STRANGER_CALL_SHARE:
                duration = lognormal(rng, 900, 0.7, 300, 5400)
            else:
                duration = lognormal(rng, 20, 0.9, 1, 1800)
            reported = rng.random() < 0.01
        seconds = int(duration)
        # An operator reports a call when it ends, dated at its start (as call detail records are).
        body = self._base("telecom.call", now - timedelta(seconds=seconds))
        body.update(caller=caller, callee=person.phone, duration_s=seconds, caller_reported=reported)
        return SimEvent(person.operator, person.phone, body)

    def _sms(self, person: Person, now: datetime) -> SimEvent:
        from_contact = self.rng.random() < 0.6
        sender = self.rng.choice(person.contacts) if from_contact else self._stranger()
        body = self._base("telecom.sms", now)
        body.update(
            sender=sender, recipient=person.phone, contains_link=not from_contact and self.rng.random() < 0.15
        )
        return SimEvent(person.operator, person.phone, body)

    def _sim_change(self, person: Person, now: datetime) -> SimEvent:
        body = self._base("telecom.sim_change", now)
        body.update(subscriber=person.phone)
        return SimEvent(person.operator, person.phone, body)

    def _transfer(self, person: Person, now: datetime) -> SimEvent:
        rng = self.rng
        amount = lognormal(rng, 300, 1.2, 1, MAX_NORMAL_TRANSFER)
        big = rng.random() < BIG_PURCHASE_SHARE
        if big:
            amount = math.exp(rng.uniform(math.log(BIG_PURCHASE[0]), math.log(BIG_PURCHASE[1])))
        if big or rng.random() < NEW_PAYEE_SHARE:
            # A new payee is mostly a business; now and then a person never paid before, or a private
            # seller's account nobody here has paid before (not remembered: memory stays flat).
            roll = rng.random()
            if roll < NEW_PRIVATE_PAYEE_SHARE:
                payee_institution = rng.choice(BANKS)
                payee_account = f"{BANK_BIN[payee_institution]}{rng.randrange(10**15):015d}"
            elif roll < 0.85:
                new = rng.choice(self.population.businesses)
                payee_institution, payee_account = new.institution, new.account
            else:
                other = rng.choice(self.population.people)
                payee_institution, payee_account = other.bank, other.account
        else:
            payee = rng.choice(person.payees)
            payee_institution, payee_account = payee.institution, payee.account
            if rng.random() < BIG_REGULAR_SHARE:
                amount = math.exp(rng.uniform(math.log(BIG_PURCHASE[0]), math.log(BIG_PURCHASE[1])))
        body = self._base("bank.transfer", now)
        body.update(
            payer_account=person.account,
            payer_phone=person.phone,
            payee_account=payee_account,
            payee_institution=payee_institution,
            amount=money(amount),
            currency="CNY",
            channel=rng.choices(("mobile", "online", "counter", "atm"), (0.8, 0.1, 0.05, 0.05))[0],
        )
        return SimEvent(person.bank, person.phone, body)

    def _login(self, person: Person, now: datetime) -> SimEvent:
        new_device = self.rng.random() < 0.02
        body = self._base("bank.login", now)
        body.update(
            account=person.account,
            holder_phone=person.phone,
            device_id=f"dev-{self.rng.getrandbits(48):012x}" if new_device else person.device_id,
            new_device=new_device,
        )
        return SimEvent(person.bank, person.phone, body)

    def _account_opened(self, person: Person, now: datetime) -> SimEvent:
        body = self._base("bank.account_opened", now)
        body.update(account=self.numbers.bank_account(person.bank), holder_phone=person.phone)
        return SimEvent(person.bank, person.phone, body)

    def _payment(self, person: Person, now: datetime) -> SimEvent:
        assert person.wallet is not None
        body = self._base("payment.payment", now)
        body.update(
            payer_account=person.wallet,
            payer_phone=person.phone,
            payee_account=self.rng.choice(self.population.merchants),
            payee_institution=PAYMENT,
            amount=money(lognormal(self.rng, 40, 1.0, 0.5, 5000)),
            currency="CNY",
        )
        return SimEvent(PAYMENT, person.phone, body)

    def _topup(self, person: Person, now: datetime) -> SimEvent:
        assert person.wallet is not None
        body = self._base("payment.topup", now)
        body.update(
            account=person.wallet,
            holder_phone=person.phone,
            amount=money(lognormal(self.rng, 200, 0.8, 10, 10_000)),
            source_account=person.account,
        )
        return SimEvent(PAYMENT, person.phone, body)

    def _withdrawal(self, person: Person, now: datetime) -> SimEvent:
        assert person.wallet is not None
        body = self._base("payment.withdrawal", now)
        body.update(
            account=person.wallet,
            holder_phone=person.phone,
            amount=money(lognormal(self.rng, 150, 0.8, 10, 10_000)),
            destination_account=person.account,
        )
        return SimEvent(PAYMENT, person.phone, body)
