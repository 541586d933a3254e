"""A synthetic population: people with a phone, an operator, a bank account, maybe a wallet, contacts
and payees; the businesses they pay (shops, landlords, dealers, schools, hospitals, payroll accounts);
everything drawn from one seed so a run can be replayed."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

from services.simulator.model import BANKS, PAYMENT, PAYMENTS, TELECOMS

# Prefixes of Chinese mobile numbers (13x, 15x, 17x, 18x, 19x); 11 digits after +86.
PREFIXES = ("13", "15", "17", "18", "19")
# Area codes of landlines (Beijing, Shanghai, Guangzhou, ..., Jinan, Hangzhou, Kunming): eight digits follow.
AREA_CODES = ("10", "20", "21", "22", "23", "24", "25", "27", "28", "29", "311", "371", "531", "571", "871")
BANK_BIN = {
    "bank-a": "6222",
    "bank-b": "6217",
    "bank-c": "6228",
    "bank-d": "6225",
    "bank-e": "6226",
    "bank-f": "6214",
    "bank-g": "6230",
    "bank-h": "6216",
}
BANK_SHARE = (0.2, 0.18, 0.15, 0.12, 0.1, 0.1, 0.08, 0.07)  # of people, in BANKS order
TELECOM_SHARE = (0.45, 0.35, 0.2)
WALLET_PREFIX = {"pay-a": ("PA", "PM"), "pay-b": ("PB", "PN")}  # wallets, merchants
LANGUAGES = (("zh", 0.85), ("ug", 0.10), ("kk", 0.05))
WALLET_SHARE = 0.7
MAX_PERSON_PAYERS = 3
# Businesses per 1,000 people, by kind: whom people pay, and who receives from many.
BUSINESSES = {
    "shop": 40,  # small shops paid by bank transfer (QR code), each by many customers
    "service": 6,  # hospitals, schools, utilities, government fees: many payers, slow pay-out
    "dealer": 3,  # car dealers, developers, schools' tuition accounts: large first-time payments
    "landlord": 8,  # rent collected from a few tenants
    "supplier": 5,  # who shops pay
    "payroll": 2,  # employers' salary accounts
}


@dataclass(frozen=True, slots=True)
class Payee:
    institution: str
    account: str


@dataclass(frozen=True, slots=True)
class Business:
    kind: str
    institution: str
    account: str
    owner_phone: str  # who the business's bank reports its outflows under

    @property
    def payee(self) -> Payee:
        return Payee(self.institution, self.account)


@dataclass(slots=True)
class Person:
    index: int
    phone: str
    operator: str
    bank: str
    account: str
    wallet: str | None
    language: str
    device_id: str
    wallet_provider: str = PAYMENT
    contacts: list[str] = field(default_factory=list)
    payees: list[Payee] = field(default_factory=list)
    activity: float = 1.0  # relative pace: people differ, the mean is 1


class Numbers:
    """Draws phone and account numbers never drawn before by this instance, so people, fraudsters,
    mules and merchants never share a number by accident."""

    def __init__(self, rng: random.Random, used: set[str] | None = None) -> None:
        # `used` may be shared with another drawer that has its own random stream.
        self.rng = rng
        self.used: set[str] = set() if used is None else used

    def _unique(self, make: str) -> str:
        while True:
            value = make.format(*(self.rng.randrange(10) for _ in range(make.count("{}"))))
            if value not in self.used:
                self.used.add(value)
                return value

    def phone(self) -> str:
        return self._unique("+86" + self.rng.choice(PREFIXES) + "{}" * 9)

    def bank_account(self, bank: str) -> str:
        return self._unique(BANK_BIN[bank] + "{}" * 15)

    def wallet(self, provider: str = PAYMENT) -> str:
        return self._unique(WALLET_PREFIX[provider][0] + "{}" * 12)

    def merchant(self, provider: str = PAYMENT) -> str:
        return self._unique(WALLET_PREFIX[provider][1] + "{}" * 10)


@dataclass
class Population:
    people: list[Person]
    merchants: list[Payee]  # payees of wallet payments, at a payment provider
    numbers: Numbers
    businesses: dict[str, list[Business]] = field(default_factory=dict)
    by_phone: dict[str, Person] = field(init=False)
    wallet_holders: list[Person] = field(init=False)
    cum_activity: list[float] = field(init=False)  # for drawing people in proportion to their activity
    cum_wallet_activity: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.by_phone = {p.phone: p for p in self.people}
        self.wallet_holders = [p for p in self.people if p.wallet is not None]
        self.cum_activity = list(itertools.accumulate(p.activity for p in self.people))
        self.cum_wallet_activity = list(itertools.accumulate(p.activity for p in self.wallet_holders))

    def business(self, kind: str, rng: random.Random) -> Business:
        return rng.choice(self.businesses[kind])


def _language(rng: random.Random) -> str:
    roll = rng.random()
    for lang, share in LANGUAGES:
        if roll < share:
            return lang
        roll -= share
    return LANGUAGES[0][0]


ABROAD_SHARE = 0.05  # people with a relative or friend calling from abroad
VIRTUAL_CONTACT_SHARE = 0.10  # people with a contact on a virtual operator's number


def _enrich(people: list[Person], rng: random.Random, pace_sigma: float) -> None:
    """Pace and the contacts that make innocent calls look odd (hard negatives); drawn from their own
    random stream so the rest of the population is the same for a given seed."""
    for person in people:
        # Log-normal with mean 1: the run's events a person-day is the population's mean pace.
        person.activity = math.exp(rng.gauss(-0.5 * pace_sigma**2, pace_sigma))
        if rng.random() < ABROAD_SHARE:
            person.contacts.append(
                rng.choice(("+1", "+44", "+49", "+7", "+971")) + f"{rng.randrange(10**9):09d}"
            )
        if rng.random() < VIRTUAL_CONTACT_SHARE:
            person.contacts.append(f"+86{rng.choice(('170', '171', '165'))}{rng.randrange(10**8):08d}")


def build_population(
    size: int = 5000, *, seed: int = 1, merchants: int = 300, pace_sigma: float = 0.5
) -> Population:
    """Deterministic for a given (size, seed, merchants, pace_sigma)."""
    if size < 30:
        raise ValueError("a population needs at least 30 people (scenarios draw up to 30 victims)")
    rng = random.Random(f"population:{seed}")
    numbers = Numbers(rng)
    people: list[Person] = []
    for i in range(size):
        bank = rng.choices(BANKS, BANK_SHARE)[0]
        provider = PAYMENT if rng.random() < 0.7 else PAYMENTS[1]
        people.append(
            Person(
                index=i,
                phone=numbers.phone(),
                operator=rng.choices(TELECOMS, TELECOM_SHARE)[0],
                bank=bank,
                account=numbers.bank_account(bank),
                wallet=numbers.wallet(provider) if rng.random() < WALLET_SHARE else None,
                wallet_provider=provider,
                language=_language(rng),
                device_id=f"dev-{rng.getrandbits(48):012x}",
            )
        )
    businesses: dict[str, list[Business]] = {}
    for kind, per_thousand in BUSINESSES.items():
        made = []
        for _ in range(max(3, size * per_thousand // 1000)):
            bank = rng.choices(BANKS, BANK_SHARE)[0]
            made.append(Business(kind, bank, numbers.bank_account(bank), numbers.phone()))
        businesses[kind] = made
    incoming = [0] * size
    for person in people:
        # Contacts and payees are other people of the population: calls and transfers stay inside it,
        # so a scorer that learns "usual counterparts" sees a consistent world.
        others = rng.sample(range(size), k=rng.randint(5, 20) + 1)
        person.contacts = [people[j].phone for j in others if j != person.index][:20]
        # Few people pay any one person regularly (at most MAX_PERSON_PAYERS), so ordinary accounts do not
        # look like collection accounts; shops and services receive from many.
        friends = [j for j in others if j != person.index and incoming[j] < MAX_PERSON_PAYERS][
            : rng.randint(1, 2)
        ]
        for j in friends:
            incoming[j] += 1
        person.payees = [Payee(people[j].bank, people[j].account) for j in friends]
        person.payees += [b.payee for b in rng.sample(businesses["shop"], k=rng.randint(1, 3))]
        person.payees += [b.payee for b in rng.sample(businesses["service"], k=1)]
    wallet_merchants = [
        Payee(provider, numbers.merchant(provider))
        for provider in rng.choices(PAYMENTS, (0.7, 0.3), k=merchants)
    ]
    _enrich(people, random.Random(f"population-extra:{seed}"), pace_sigma)
    return Population(people=people, merchants=wallet_merchants, numbers=numbers, businesses=businesses)


def fixed_line(rng: random.Random) -> str:
    """A landline's number: an office's, a clinic's, a shop's (or a fraud call spoofing one)."""
    return f"+86{rng.choice(AREA_CODES)}{rng.randrange(10**8):08d}"
