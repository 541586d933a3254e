"""The population is deterministic by seed and well formed."""

from __future__ import annotations

import re
from collections import Counter

from services.simulator.model import BANKS, TELECOMS
from services.simulator.population import MAX_PERSON_PAYERS, build_population

PHONE = re.compile(r"^\+861[35789][0-9]{9}$")


def test_same_seed_same_population() -> None:
    a, b = build_population(300, seed=7), build_population(300, seed=7)
    assert [(p.phone, p.account, p.wallet, p.contacts, p.payees) for p in a.people] == [
        (p.phone, p.account, p.wallet, p.contacts, p.payees) for p in b.people
    ]
    assert a.merchants == b.merchants


def test_other_seed_other_population() -> None:
    assert build_population(300, seed=1).people[0].phone != build_population(300, seed=2).people[0].phone


def test_people_are_well_formed() -> None:
    pop = build_population(2000, seed=3)
    phones = [p.phone for p in pop.people]
    assert len(set(phones)) == len(phones)
    assert all(PHONE.match(p) for p in phones)
    assert len({p.account for p in pop.people}) == len(pop.people)
    for person in pop.people:
        assert person.operator in TELECOMS and person.bank in BANKS
        assert person.contacts and person.phone not in person.contacts
        assert person.payees and person.account not in {p.account for p in person.payees}
    languages = Counter(p.language for p in pop.people)
    assert 0.80 < languages["zh"] / 2000 < 0.90
    assert 0.06 < languages["ug"] / 2000 < 0.14
    assert 0.02 < languages["kk"] / 2000 < 0.08
    assert 0.6 < len(pop.wallet_holders) / 2000 < 0.8


def test_no_person_is_a_regular_payee_of_many() -> None:
    # Otherwise ordinary accounts would look like mule accounts collecting from many people.
    pop = build_population(2000, seed=5)
    accounts = {p.account for p in pop.people}
    payers = Counter(payee.account for p in pop.people for payee in p.payees if payee.account in accounts)
    assert max(payers.values()) <= MAX_PERSON_PAYERS
