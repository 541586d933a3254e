"""Scam episodes, as telecom and online fraud in China runs them (from public police warnings and news,
not from the project's simulator): who is called or messaged, how the victim pays, and where the money goes.

Money goes to a collection account (a rented or bought account: a student's, a villager's) at any bank or
wallet, Stopline member or not, which passes it on within minutes to a second layer. A fraud ring uses an
account for a day or three before it is frozen or burnt, so victims of one ring meet on its accounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from models.foreign.world import (
    DAY,
    HOUR,
    MINUTE,
    OUTSIDE_BANKS,
    Episode,
    Payee,
    Person,
    ScamTypes,
    World,
    lognormal,
    money,
)
from services.simulator.model import BANKS, PAYMENTS

AGES = {  # whom each scam reaches, by age group (young, mid, old)
    "police_impersonation": (0.8, 1.0, 1.5),
    "refund_service": (1.2, 1.0, 0.7),
    "pig_butchering": (0.7, 1.5, 0.8),
    "job_task": (2.0, 0.8, 0.3),
    "loan_fee": (1.5, 1.0, 0.3),
    "account_takeover": (1.0, 1.0, 1.2),
    "sim_swap": (1.0, 1.0, 1.0),
    "group_investment": (0.5, 1.2, 1.5),
}


@dataclass
class Collector:
    account: Payee
    holder: str  # the phone on file: a local who rented it out, or someone far away
    until: float
    inflows: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Ring:
    """A fraud ring's collection accounts; it opens new ones as old ones are burnt."""

    world: World
    wallets: float  # share of its accounts that are wallets (cash-out through wallets)
    outside: float  # share at banks outside Stopline
    accounts: list[Collector] = field(default_factory=list)

    def collector(self, at: float) -> Collector:
        w, rng = self.world, self.world.rng
        live = [c for c in self.accounts if c.until > at]
        if live and rng.random() < 0.75:
            return rng.choice(live)
        roll = rng.random()
        if roll < self.wallets:
            account = w.wallet_account(rng.choice(PAYMENTS))
        elif roll < self.wallets + self.outside:
            account = w.bank_account(rng.choice(OUTSIDE_BANKS))
        else:
            account = w.bank_account(rng.choice(BANKS))
        if rng.random() < 0.35:  # a local rented out an account, a bank's opened for it days ago
            holder = rng.choice(w.people).phone
            if account[0] in BANKS:  # (a wallet's opening is no event Stopline takes)
                w.account_opened(at - rng.uniform(1, 6) * DAY, holder, account, scenario="mule")
        else:
            holder = w.new_phone()
        c = Collector(account, holder, at + rng.uniform(0.5, 3) * DAY)
        self.accounts.append(c)
        return c


def _forward(world: World, ep: Episode, c: Collector, at: float, amount: float) -> float:
    """The collector passes the money on (often split) to the next layer; when it left."""
    rng = world.rng
    left = at + lognormal(rng, 9 * MINUTE, 0.9, 1.5 * MINUTE, 3 * HOUR)
    parts = rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0]
    for k in range(parts):
        out = world.bank_account(rng.choice((*BANKS, *OUTSIDE_BANKS)))
        share = amount * rng.uniform(0.93, 1.0) / parts
        t = left + k * rng.uniform(10, 120)
        if c.account[0] in PAYMENTS and rng.random() < 0.6:  # cash out of the wallet to a card
            ref = world.withdraw(t, c.holder, c.account, out, money(share), scenario=ep.id)
        else:
            ref = world.money_out(t, c.holder, c.account, out, money(share), scenario=ep.id)
        ep.refs.add(ref)
    c.inflows.append((at, amount))
    return left


def _pay(
    world: World,
    ep: Episode,
    ring: Ring,
    victim: Person,
    at: float,
    amount: float,
    *,
    source: Payee | None = None,
    collector: Collector | None = None,
    round_to: int = 0,
) -> Collector:
    rng = world.rng
    c = collector or ring.collector(at)
    src = source or rng.choice(victim.banks)
    ref = world.money_out(at, victim.phone, src, c.account, money(amount, round_to=round_to), scenario=ep.id)
    left = _forward(world, ep, c, at, amount)
    if not ep.payments:
        ep.money_left_at = left
    ep.payments.append((ref, at, amount, f"{c.account[0]}/{c.account[1]}"))
    ep.refs.add(ref)
    ep.collectors.add(f"{c.account[0]}/{c.account[1]}")
    ep.visible |= world.reported(ref)
    return c


def _scam_call(world: World, ep: Episode, victim: Person, at: float, dur_min: float) -> float:
    """A call from a stranger (a domestic mobile, a spoofed or overseas number); when it ends."""
    rng = world.rng
    caller = rng.choice(
        (world.new_phone(), f"+{rng.choice(('63', '855', '95', '856', '60'))}{rng.randrange(10**9):09d}")
    )
    dur = int(dur_min * MINUTE)
    ep.refs.add(world.call(at, victim, caller, dur, scenario=ep.id, caller_reported=rng.random() < 0.05))
    return at + dur


def police(world: World, ep: Episode, ring: Ring, v: Person, at: float) -> None:
    """'This is the public security bureau: your account is in a money-laundering case; move your savings
    to the safe account for checking.' Kept on the line while paying; often over an app (no call event)."""
    rng = world.rng
    if rng.random() < 0.35:  # the first contact is a text with a 'case notice' link
        ep.start = at - rng.uniform(5, 60) * MINUTE
        ep.refs.add(world.sms(ep.start, v, world.new_phone(), True, scenario=ep.id))
    dur = lognormal(rng, 50, 0.5, 15, 180)
    app_call = rng.random() < 0.4
    end = at + dur * MINUTE if app_call else _scam_call(world, ep, v, at, dur)
    t = at + rng.uniform(0.3, 0.9) * dur * MINUTE if rng.random() < 0.6 else end + rng.uniform(2, 40) * MINUTE
    if len(v.banks) > 1 and rng.random() < 0.4:  # gather savings into one account first
        own = v.banks[0]
        ep.refs.add(
            world.transfer(
                t,
                v.phone,
                v.banks[1],
                own,
                money(lognormal(rng, 30000, 0.8, 2000, 300000), round_to=1000),
                scenario=ep.id,
            )
        )
        t += rng.uniform(2, 10) * MINUTE
    for _ in range(rng.choices((1, 2, 3, 4), weights=(0.4, 0.3, 0.2, 0.1))[0]):
        _pay(
            world,
            ep,
            ring,
            v,
            t,
            lognormal(rng, 50000, 0.9, 3000, 800000),
            source=v.banks[0],
            round_to=1000 if rng.random() < 0.7 else 0,
        )
        t += rng.uniform(3, 30) * MINUTE


def refund(world: World, ep: Episode, ring: Ring, v: Person, at: float) -> None:
    """'Customer service: the goods you bought are faulty / your student loan account must be closed';
    the victim pays a 'guarantee' to get the refund, several times."""
    rng = world.rng
    if rng.random() < 0.4:
        ep.start = at - rng.uniform(10, 120) * MINUTE
        ep.refs.add(world.sms(ep.start, v, world.new_phone(), True, scenario=ep.id))
    dur = lognormal(rng, 35, 0.5, 8, 120)
    end = _scam_call(world, ep, v, at, dur) if rng.random() < 0.75 else at + dur * MINUTE
    t = at + rng.uniform(0.4, 0.9) * dur * MINUTE if rng.random() < 0.5 else end + rng.uniform(1, 25) * MINUTE
    wallet_first = rng.random() < 0.5
    if wallet_first and rng.random() < 0.5:
        ep.refs.add(
            world.topup(
                t - 3 * MINUTE,
                v.phone,
                v.wallet,
                v.banks[0],
                money(lognormal(rng, 5000, 0.6, 500, 50000), round_to=100),
                scenario=ep.id,
            )
        )
    for _ in range(rng.choices((1, 2, 3, 4, 5), weights=(0.3, 0.3, 0.2, 0.1, 0.1))[0]):
        src = v.wallet if wallet_first else rng.choice(v.banks)
        _pay(world, ep, ring, v, t, lognormal(rng, 8000, 0.9, 500, 150000), source=src)
        t += rng.uniform(4, 40) * MINUTE


def pig(world: World, ep: Episode, ring: Ring, v: Person, at: float) -> None:
    """Weeks of chat with a 'friend' on a dating or WeChat group, then an investment platform: a small
    deposit that shows a profit, bigger deposits days later, then 'tax' to withdraw. No calls."""
    rng = world.rng
    t = at
    amount = lognormal(rng, 5000, 0.7, 1000, 30000)
    for k in range(rng.randint(2, 5)):
        _pay(world, ep, ring, v, t, amount, round_to=100)  # each deposit to the account the 'platform' gives
        t += rng.uniform(0.5, 2.5) * DAY if k < 2 else rng.uniform(1, 6) * HOUR
        t = _daytime(world, t)
        amount = lognormal(rng, amount * 4, 0.6, 5000, 1_000_000)


def job(world: World, ep: Episode, ring: Ring, v: Person, at: float) -> None:
    """Part-time 'like and review' tasks: small tasks pay back a commission, then a 'combined task'
    needs ever larger prepayments to 'unlock' the money."""
    rng = world.rng
    t = at
    amounts = [lognormal(rng, 150, 0.6, 20, 800), lognormal(rng, 600, 0.6, 100, 3000)]
    amounts += [lognormal(rng, 3000 * 2.2**k, 0.5, 500, 100000) for k in range(rng.randint(1, 4))]
    for a in amounts:
        if rng.random() < 0.3:
            ep.refs.add(
                world.topup(
                    t - 2 * MINUTE,
                    v.phone,
                    v.wallet,
                    rng.choice(v.banks),
                    money(a * 1.05, round_to=100),
                    scenario=ep.id,
                )
            )
        _pay(world, ep, ring, v, t, a, source=v.wallet if rng.random() < 0.6 else None)
        t += rng.uniform(8, 60) * MINUTE


def loan(world: World, ep: Episode, ring: Ring, v: Person, at: float) -> None:
    """A 'no-collateral loan' app: a fee to verify, then the loan is 'frozen' for a wrong card number."""
    rng = world.rng
    t = at
    if rng.random() < 0.5:
        t = _scam_call(world, ep, v, t, lognormal(rng, 12, 0.6, 3, 60)) + rng.uniform(2, 20) * MINUTE
    for a in (
        lognormal(rng, 1500, 0.6, 200, 6000),
        lognormal(rng, 5000, 0.6, 800, 30000),
        lognormal(rng, 9000, 0.6, 1000, 50000),
    )[: rng.randint(1, 3)]:
        _pay(
            world,
            ep,
            ring,
            v,
            t,
            a,
            source=v.wallet if rng.random() < 0.5 else None,
            round_to=100 if rng.random() < 0.5 else 0,
        )
        t += rng.uniform(10, 120) * MINUTE


def takeover(world: World, ep: Episode, ring: Ring, v: Person, at: float) -> None:
    """A text with a link ('your ETC card is suspended', 'points expire today'): the victim types in
    card, password and code on the fake page; the fraudster logs in from a new phone and empties it."""
    rng = world.rng
    ep.refs.add(
        world.sms(
            at,
            v,
            f"+86106{rng.randrange(10**8):08d}" if rng.random() < 0.5 else world.new_phone(),
            True,
            scenario=ep.id,
        )
    )
    t = at + lognormal(rng, 20, 1.0, 2, 240) * MINUTE
    i = rng.randrange(len(v.banks))
    device = f"dev-{rng.getrandbits(48):012x}"
    ep.refs.add(world.login(t, v.phone, v.banks[i], device, True, scenario=ep.id))
    t += rng.uniform(1, 15) * MINUTE
    for _ in range(rng.randint(1, 3)):
        _pay(world, ep, ring, v, t, lognormal(rng, 15000, 0.9, 1000, 200000), source=v.banks[i])
        t += rng.uniform(1, 10) * MINUTE


def sim_swap(world: World, ep: Episode, ring: Ring, v: Person, at: float) -> None:
    """The number is moved to the fraudster's SIM (a forged ID at a dealer), usually at night; codes
    now reach them: new-device logins and transfers from each bank."""
    rng = world.rng
    ep.refs.add(world.sim_change(at, v, scenario=ep.id))
    t = at + lognormal(rng, 25, 0.8, 3, 180) * MINUTE
    device = f"dev-{rng.getrandbits(48):012x}"
    for bank in v.banks:
        ep.refs.add(world.login(t, v.phone, bank, device, True, scenario=ep.id))
        t += rng.uniform(1, 5) * MINUTE
        for _ in range(rng.randint(1, 3)):
            _pay(world, ep, ring, v, t, lognormal(rng, 20000, 0.9, 2000, 300000), source=bank)
            t += rng.uniform(1, 8) * MINUTE


def group(world: World, ring: Ring, at: float) -> list[Episode]:
    """A 'stock tips' chat group: the 'teacher' has members buy an 'internal share allotment' in the same
    hour, all to one account: several victims, one collector."""
    rng = world.rng
    c = ring.collector(at)
    out: list[Episode] = []
    for v in rng.sample(world.people, rng.randint(3, 8)):
        t = at + rng.uniform(0, 60) * MINUTE
        ep = Episode(f"scam-{len(world.episodes) + len(out):05d}", "group_investment", v.phone, t)
        _pay(world, ep, ring, v, t, lognormal(rng, 20000, 0.8, 2000, 300000), collector=c, round_to=1000)
        if rng.random() < 0.4:
            _pay(
                world,
                ep,
                ring,
                v,
                t + rng.uniform(10, 50) * MINUTE,
                lognormal(rng, 20000, 0.8, 2000, 300000),
                collector=c,
                round_to=1000,
            )
        out.append(ep)
    return out


RUN = {
    "police_impersonation": police,
    "refund_service": refund,
    "pig_butchering": pig,
    "job_task": job,
    "loan_fee": loan,
    "account_takeover": takeover,
    "sim_swap": sim_swap,
}


def _daytime(world: World, t: float) -> float:
    """Moved into waking hours (9-22) if it fell in the night."""
    hour = (t - world.t0) % DAY / HOUR
    if 9 <= hour < 22:
        return t
    return t + ((9 - hour) % 24) * HOUR + world.rng.uniform(0, 3) * HOUR


def _victim(world: World, typology: str) -> Person:
    w = AGES[typology]
    idx = {"young": 0, "mid": 1, "old": 2}
    while True:
        v = world.rng.choice(world.people)
        if world.rng.random() < w[idx[v.age]] / max(w):
            return v


def plan(world: World) -> None:
    """The scam episodes of the whole run, their events and their ground truth."""
    rng, p = world.rng, world.params
    rings = [Ring(world, rng.uniform(0.1, 0.35), rng.uniform(0.1, 0.3)) for _ in range(rng.randint(3, 7))]
    total = p.scams_per_1000_day * len(world.people) / 1000 * world.days
    # A chat group's call makes several victims at once: fewer groups, so victims of each kind are alike.
    types = list(ScamTypes)
    weights = [p.typology_weight[t] / (5 if t == "group_investment" else 1) for t in types]
    n = 0
    while n < total:
        typology = rng.choices(types, weights=weights)[0]
        day = rng.randrange(world.days)
        at = world.time_of_day(day)
        if typology == "sim_swap" and rng.random() < 0.7:  # at night, when the victim sleeps
            at = world.t0 + day * DAY + rng.uniform(0, 6) * HOUR
        ring = rng.choice(rings)
        if typology == "group_investment":
            eps = group(world, ring, _daytime(world, at))
        else:
            v = _victim(world, typology)
            ep = Episode(f"scam-{len(world.episodes):05d}", typology, v.phone, at)
            RUN[typology](world, ep, ring, v, at)
            eps = [ep]
        for ep in eps:
            ep.start = min(ep.start, *(p[1] for p in ep.payments))
            world.episodes.append(ep)
        n += len(eps)
    assert all(math.isfinite(e.money_left_at) for e in world.episodes)
