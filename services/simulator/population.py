"""A synthetic population: people with a phone, an operator, a bank account, maybe a wallet, contacts
and payees; everything drawn from one seed so a run can be replayed."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

from services.simulator.model import BANKS, TELECOMS

# Prefixes of Chinese mobile numbers (13x, 15x, 17x, 18x, 19x); 11 digits after +86.
PREFIXES = ("13", "15", "17", "18", "19")
BANK_BIN = {"bank-a": "6222", "bank-b": "6217", "bank-c": "6228"}
LANGUAGES = (("zh", 0.85), ("ug", 0.10), ("kk", 0.05))
WALLET_SHARE = 0.7
MAX_PERSON_PAYERS = 3


@dataclass(frozen=True, slots=True)
class Payee:
    institution: str
    account: str


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
    contacts: list[str] = field(default_factory=list)
    payees: list[Payee] = field(default_factory=list)
    activity: float = 1.0  # relative activity: heavy users make many more calls and payments a day


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

    def wallet(self) -> str:
        return self._unique("PA" + "{}" * 12)

    def merchant(self) -> str:
        return self._unique("PM" + "{}" * 10)


@dataclass
class Population:
    people: list[Person]
    merchants: list[str]  # payees of wallet payments, at the payment provider
    numbers: Numbers
    businesses: list[Payee] = field(default_factory=list)  # bank accounts that receive but never pay out
    by_phone: dict[str, Person] = field(init=False)
    wallet_holders: list[Person] = field(init=False)
    cum_activity: list[float] = field(init=False)  # for drawing people in proportion to their activity
    cum_wallet_activity: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.by_phone = {p.phone: p for p in self.people}
        self.wallet_holders = [p for p in self.people if p.wallet is not None]
        self.cum_activity = list(itertools.accumulate(p.activity for p in self.people))
        self.cum_wallet_activity = list(itertools.accumulate(p.activity for p in self.wallet_holders))


def _language(rng: random.Random) -> str:
    roll = rng.random()
    for lang, share in LANGUAGES:
        if roll < share:
            return lang
        roll -= share
    return LANGUAGES[0][0]


ACTIVITY = (0.25, 16.0)  # log-uniform: from a person who pays once a week to a small trader
ABROAD_SHARE = 0.05  # people with a relative or friend calling from abroad
VIRTUAL_CONTACT_SHARE = 0.10  # people with a contact on a virtual operator's number


def _enrich(people: list[Person], rng: random.Random) -> None:
    """Activity levels and the contacts that make innocent calls look odd (hard negatives); drawn from their
    own random stream so the rest of the population is the same as before for a given seed."""
    for person in people:
        person.activity = math.exp(rng.uniform(math.log(ACTIVITY[0]), math.log(ACTIVITY[1])))
        if rng.random() < ABROAD_SHARE:
            person.contacts.append(
                rng.choice(("+1", "+44", "+49", "+7", "+971")) + f"{rng.randrange(10**9):09d}"
            )
        if rng.random() < VIRTUAL_CONTACT_SHARE:
            person.contacts.append(f"+86{rng.choice(('170', '171', '165'))}{rng.randrange(10**8):08d}")


def build_population(size: int = 5000, *, seed: int = 1, merchants: int = 200) -> Population:
    """Deterministic for a given (size, seed, merchants)."""
    if size < 30:
        raise ValueError("a population needs at least 30 people (scenarios draw up to 20 victims)")
    rng = random.Random(f"population:{seed}")
    numbers = Numbers(rng)
    people: list[Person] = []
    for i in range(size):
        bank = rng.choice(BANKS)
        people.append(
            Person(
                index=i,
                phone=numbers.phone(),
                operator=rng.choice(TELECOMS),
                bank=bank,
                account=numbers.bank_account(bank),
                wallet=numbers.wallet() if rng.random() < WALLET_SHARE else None,
                language=_language(rng),
                device_id=f"dev-{rng.getrandbits(48):012x}",
            )
        )
    businesses = [
        Payee(bank, numbers.bank_account(bank)) for bank in rng.choices(BANKS, k=max(20, size // 20))
    ]
    incoming = [0] * size
    for person in people:
        # Contacts and payees are other people of the population: calls and transfers stay inside it,
        # so a scorer that learns "usual counterparts" sees a consistent world.
        others = rng.sample(range(size), k=rng.randint(5, 20) + 1)
        person.contacts = [people[j].phone for j in others if j != person.index][:20]
        # Few people pay any one person regularly (at most MAX_PERSON_PAYERS), so ordinary accounts do not
        # look like collection accounts; shops and landlords (businesses) receive from many but never pay on.
        friends = [j for j in others if j != person.index and incoming[j] < MAX_PERSON_PAYERS][
            : rng.randint(1, 2)
        ]
        for j in friends:
            incoming[j] += 1
        person.payees = [Payee(people[j].bank, people[j].account) for j in friends]
        person.payees += rng.sample(businesses, k=rng.randint(1, 3))
    _enrich(people, random.Random(f"population-extra:{seed}"))
    return Population(
        people=people,
        merchants=[numbers.merchant() for _ in range(merchants)],
        numbers=numbers,
        businesses=businesses,
    )
