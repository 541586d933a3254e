"""Hard negatives: ordinary life that looks like a scam in one respect or more, with ground truth, so the
report can say what share of each kind is alerted. docs/simulator.md describes each.

- stranger_call_payment: a long call from a number the person never spoke to (a courier, a hospital,
  the bank's call centre, a government office), then ordinary payments (a quarter to a new payee), or
  after an office's or a hospital's call now and then the deposit or fee it was about;
- large_first_transfer: a large sum to a payee never paid before (a car, a flat's deposit, tuition),
  in parts when it is over a day's mobile limit, after a short call from the seller in some cases;
- landlord_fan_in: rent from several tenants into one account, paid on to a mortgage later;
- shop_fan_in: a small shop's busy day: dozens of customers pay its account, it pays a supplier;
- payroll: an employer funds its salary account from several accounts and pays many employees at once;
- group_purchase: someone collects small sums from friends and pays a merchant the total;
- new_phone: a new phone: SIM changed and a login from a new device, then ordinary payments;
- benign_link_sms: a delivery or bank notice with a link from an unknown sender, then a payment.

The one-off payees (the seller, the hospital's or the office's account) are, in the world's
`fresh_payee_share`, accounts nobody here paid before: to Stopline they are first seen with this payment,
as a scam's collection account is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from services.simulator.model import BANKS, SimEvent
from services.simulator.normal import SERVICE_NUMBERS, lognormal, stranger
from services.simulator.population import Person, fixed_line
from services.simulator.typologies import DAY, HOUR, MIN, Build, log_uniform

if TYPE_CHECKING:
    from services.simulator.scenarios import Scenario, ScenarioFactory

KINDS = (
    "stranger_call_payment",
    "large_first_transfer",
    "landlord_fan_in",
    "shop_fan_in",
    "payroll",
    "group_purchase",
    "new_phone",
    "benign_link_sms",
)


class Benign(Build):
    """A hard-negative episode under construction: every money-out it makes is remembered."""

    def person(self) -> Person:
        return self.rng.choice(self.f.population.people)

    def out(self, payer: tuple[str, str, str], to: tuple[str, str], t: float, amount: float) -> None:
        self.money_out(self.transfer(payer, to, t, amount), t, payer[2])

    def money_out(self, event: SimEvent, t: float, payer_phone: str) -> None:
        self.emit(t, event)
        self.victim_refs.append(event.ref)  # the episode's money-outs (none is a loss)
        self.victims.add(payer_phone)

    def pays(self, p: Person, to: tuple[str, str], t: float, amount: float) -> None:
        """A person pays: from the wallet in the world's share of cases (up to a wallet's limit), else
        from the bank, so that neither channel alone tells ordinary life from a scam."""
        if self.f.wallet.pays(p, amount):
            self.rng.random()  # a transfer's draw of its channel, made either way: later episodes stay
            self.money_out(self.payment(p, to, t, amount), t, p.phone)
        else:
            self.out((p.bank, p.account, p.phone), to, t, amount)

    def one_off(self, kind: str) -> tuple[str, str]:
        """A payee paid once: an account nobody here paid before in the world's share, else a business of
        `kind` that many people pay. The business is drawn either way, so the share moves no draw of the
        episode's own stream."""
        business = self.f.population.business(kind, self.rng)
        f = self.f
        if f.fresh_rng.random() < f.fresh_payee_share:
            bank = f.fresh_rng.choice(BANKS)
            return bank, f.fresh_numbers.bank_account(bank)
        return business.institution, business.account

    def ordinary(self, p: Person, t: float, *, new_share: float = 0.0) -> None:
        """An ordinary payment: a usual payee at an ordinary amount, or now and then a service never
        paid before (a hospital's or the tax office's account)."""
        rng = self.rng
        if rng.random() < new_share:
            self.pays(p, self.one_off("service"), t, log_uniform(rng, 100, 5_000))
            return
        payee = rng.choice(p.payees)
        self.pays(p, (payee.institution, payee.account), t, lognormal(rng, 300, 1.0, 5, 20_000))

    def finish_benign(self) -> Scenario:
        scenario = self.finish()
        truth = scenario.truth
        scenario.truth = {
            "scenario_id": truth["scenario_id"],
            "kind": self.typology,
            "benign": True,
            "started_at": truth["started_at"],
            "event_ids": truth["event_ids"],
            "people": truth["victim_phones"],
            "money_ids": truth["victim_payment_ids"],
            "accounts": sorted(self.first_payee_accounts),
        }
        return scenario


def stranger_call_payment(b: Benign) -> None:
    rng = b.rng
    p = b.person()
    office = rng.random() < 0.4  # a hospital, an office or the bank's call centre, else a courier or a sale
    if office:  # a bank's or a hotline's service number, or a hospital's or an office's landline
        caller = rng.choice(SERVICE_NUMBERS) if rng.random() < 0.5 else fixed_line(rng)
    else:
        caller = stranger(rng, b.f.population.by_phone)
    t = b.call(p, caller, 0.0, log_uniform(rng, 5 * MIN, 45 * MIN))
    if office and rng.random() < 0.35:  # the deposit, the fee or the premium the call was about
        to = b.one_off("service")
        b.first_payee_accounts.add(to[1])
        b.pays(p, to, t + log_uniform(rng, MIN, 30 * MIN), log_uniform(rng, 1_000, 50_000))
        return
    for _ in range(rng.randint(1, 3)):
        t += log_uniform(rng, 1 * MIN, 90 * MIN)
        b.ordinary(p, t, new_share=0.25)


def large_first_transfer(b: Benign) -> None:
    rng = b.rng
    p = b.person()
    seller = b.one_off(rng.choice(("dealer", "dealer", "landlord", "service")))
    b.first_payee_accounts.add(seller[1])
    t = 0.0
    if rng.random() < 0.15:  # the seller calls to agree on the deposit
        t = b.call(p, stranger(rng, b.f.population.by_phone), t, log_uniform(rng, 2 * MIN, 8 * MIN))
        t += log_uniform(rng, 10 * MIN, DAY)
    if rng.random() < 0.5:
        b.login(p, t, new_device=False)
        t += log_uniform(rng, 20, 300)
    total = log_uniform(rng, 5_000, 400_000)
    if total > 50_000 and rng.random() < 0.6:  # over a day's mobile limit: parts minutes apart
        parts, gap = rng.randint(2, 3), (MIN, 20 * MIN)
    else:
        parts, gap = (2 if rng.random() < 0.3 else 1), (HOUR, 3 * DAY)
    for _ in range(parts):
        b.pays(p, seller, t, total / parts)
        t += log_uniform(rng, *gap)


def _fan_in(
    b: Benign,
    kind: str,
    payers: int,
    span_s: float,
    amount: tuple[float, float],
    payout_after_s: tuple[float, float],
) -> None:
    """Many people pay one business account within `span_s`; it pays most of it on later."""
    rng = b.rng
    business = b.f.population.business(kind, rng)
    b.first_payee_accounts.add(business.account)
    received = 0.0
    for t in sorted(rng.uniform(0, span_s) for _ in range(payers)):
        amount_paid = log_uniform(rng, *amount)
        received += amount_paid
        b.pays(b.person(), (business.institution, business.account), t, amount_paid)
    supplier = b.f.population.business("supplier", rng)
    later = span_s + log_uniform(rng, *payout_after_s)
    b.out(
        (business.institution, business.account, business.owner_phone),
        (supplier.institution, supplier.account),
        later,
        received * rng.uniform(0.5, 0.95),
    )


def landlord_fan_in(b: Benign) -> None:
    _fan_in(
        b, "landlord", b.rng.randint(3, 12), b.rng.uniform(HOUR, 3 * DAY), (1_500, 6_000), (HOUR, 2 * DAY)
    )


def shop_fan_in(b: Benign) -> None:
    _fan_in(
        b, "shop", b.rng.randint(15, 60), b.rng.uniform(4 * HOUR, 10 * HOUR), (10, 500), (30 * MIN, 6 * HOUR)
    )


def payroll(b: Benign) -> None:
    """Funded from a few accounts (the employer's, its clients'), then salaries to many at once."""
    rng = b.rng
    employer = b.f.population.business("payroll", rng)
    b.first_payee_accounts.add(employer.account)
    total = 0.0
    t = 0.0
    for _ in range(rng.randint(2, 4)):
        amount = log_uniform(rng, 30_000, 300_000)
        total += amount
        funder = b.f.population.business(rng.choice(("supplier", "dealer", "service")), rng)
        b.out(
            (funder.institution, funder.account, funder.owner_phone),
            (employer.institution, employer.account),
            t,
            amount,
        )
        t += log_uniform(rng, MIN, 3 * HOUR)
    t += log_uniform(rng, 10 * MIN, 6 * HOUR)
    employees = rng.sample(b.f.population.people, rng.randint(10, 30))
    for person in employees:
        b.out(
            (employer.institution, employer.account, employer.owner_phone),
            (person.bank, person.account),
            t,
            total / len(employees) * rng.uniform(0.6, 1.2),
        )
        t += log_uniform(rng, 5, 120)


def group_purchase(b: Benign) -> None:
    """A friend collects for a group order: small sums from their contacts, then one payment on."""
    rng = b.rng
    organizer = b.person()
    b.first_payee_accounts.add(organizer.account)
    friends = [b.f.population.by_phone[c] for c in organizer.contacts if c in b.f.population.by_phone]
    friends = rng.sample(friends, min(len(friends), rng.randint(5, 15))) or [b.person()]
    span = log_uniform(rng, HOUR, 12 * HOUR)
    received = 0.0
    b.sms(organizer, rng.choice(friends).phone, 0.0, link=False)
    for friend in friends:
        t = rng.uniform(0, span)
        amount = log_uniform(rng, 50, 2_000)
        received += amount
        b.pays(friend, (organizer.bank, organizer.account), t, amount)
    merchant = b.f.population.business(rng.choice(("shop", "dealer")), rng)
    b.pays(
        organizer,
        (merchant.institution, merchant.account),
        span + log_uniform(rng, 30 * MIN, DAY),
        received * rng.uniform(0.9, 1.0),
    )


def new_phone(b: Benign) -> None:
    rng = b.rng
    p = b.person()
    b.sim_change(p, 0.0)
    t = log_uniform(rng, 5 * MIN, 2 * HOUR)
    b.login(p, t, new_device=True)
    for _ in range(rng.randint(1, 4)):
        t += log_uniform(rng, 5 * MIN, 12 * HOUR)
        b.ordinary(p, t, new_share=0.15)


def benign_link_sms(b: Benign) -> None:
    rng = b.rng
    p = b.person()
    sender = rng.choice(SERVICE_NUMBERS) if rng.random() < 0.5 else stranger(rng, b.f.population.by_phone)
    b.sms(p, sender, 0.0, link=True)
    b.ordinary(p, log_uniform(rng, 5 * MIN, 3 * HOUR), new_share=0.2)


BUILDERS: dict[str, Callable[[Benign], None]] = {
    "stranger_call_payment": stranger_call_payment,
    "large_first_transfer": large_first_transfer,
    "landlord_fan_in": landlord_fan_in,
    "shop_fan_in": shop_fan_in,
    "payroll": payroll,
    "group_purchase": group_purchase,
    "new_phone": new_phone,
    "benign_link_sms": benign_link_sms,
}


def build(f: ScenarioFactory, sid: str, kind: str, start: datetime) -> Scenario:
    b = Benign(f, sid, kind, start)
    BUILDERS[kind](b)
    return b.finish_benign()
