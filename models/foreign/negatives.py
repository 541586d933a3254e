"""Hard negatives: honest people doing what a scam looks like from the event stream.

- unknown_long_call: a long call from a number never seen (a hospital, the bank's call centre, a tax or
  social-insurance office, a courier sorting out a parcel), then a payment soon after, sometimes large and
  to a new payee (a hospital deposit).
- large_first_transfer: a car, a flat's deposit, tuition, a wedding: a large transfer to a new payee
  with no call before it.
- landlord, group_purchase, shop: an account many people pay within hours, paid out soon after (the rent
  to the mortgage, the neighbours' order to the farm, the day's takings to the owner's card).
- payroll: a small employer pays a dozen workers in an hour (a fan-out to payees a week's memory forgot).
- new_device: a new phone (sometimes a replacement SIM after losing the old one), a new-device login,
  then ordinary payments and a transfer home.
- travel: days away: hotels, trains, restaurants never paid before, calls from drivers and hotels.
"""

from __future__ import annotations

from models.foreign.world import (
    DAY,
    HOUR,
    MINUTE,
    OUTSIDE_BANKS,
    Negative,
    Person,
    World,
    lognormal,
    money,
)
from services.simulator.model import BANKS, PAYMENTS

KINDS = (
    "unknown_long_call",
    "large_first_transfer",
    "landlord",
    "group_purchase",
    "shop",
    "payroll",
    "new_device",
    "travel",
)


def unknown_long_call(w: World, q: Person, at: float) -> Negative:
    rng = w.rng
    who = rng.choice(("hospital", "bank_call_centre", "government", "courier", "insurance", "school"))
    caller = {
        "hospital": f"+86{rng.choice(('531', '535', '536'))}{rng.randrange(10**8):08d}",
        "bank_call_centre": f"+86955{rng.choice(('88', '99', '33', '66', '59'))}",
        "government": f"+86{rng.choice(('531', '535'))}12345{rng.randrange(1000):03d}",
    }.get(who, w.new_phone())
    dur = int(lognormal(rng, 24 if who != "courier" else 8, 0.4, 3, 90) * MINUTE)
    refs = {w.call(at, q, caller, dur)}
    t = at + dur + rng.uniform(1, 30) * MINUTE
    roll = rng.random()
    if who in ("hospital", "government", "insurance", "school") and roll < 0.6:
        # The deposit, the fee or the premium the call was about: large, to an account never paid.
        payee = w.bank_account(rng.choice((*BANKS, *OUTSIDE_BANKS)))
        amount = {
            "hospital": (10000, 2000, 50000),
            "government": (3000, 500, 20000),
            "insurance": (6000, 1000, 30000),
            "school": (4000, 500, 20000),
        }[who]
        ref = w.transfer(
            t,
            q.phone,
            rng.choice(q.banks),
            payee,
            money(lognormal(rng, amount[0], 0.6, amount[1], amount[2])),
        )
    elif who == "bank_call_centre" and roll < 0.6:  # the credit-card instalment they agreed on
        ref = w.transfer(
            t,
            q.phone,
            q.banks[0],
            w.bank_account(q.banks[0][0]),
            money(lognormal(rng, 5000, 0.7, 500, 40000), round_to=100),
        )
    else:  # an everyday payment that happens to come next
        payee = rng.choice(q.merchants) if rng.random() < 0.7 else rng.choice(w.merchants)
        ref = w.pay(t, q.phone, q.wallet, payee, money(lognormal(rng, 80, 1.2, 2, 5000)))
    refs.add(ref)
    return Negative("unknown_long_call", q.phone, ref, t, at, t, refs)


def large_first_transfer(w: World, q: Person, at: float) -> Negative:
    rng = w.rng
    what = rng.choice(("car", "flat_deposit", "tuition", "wedding", "renovation"))
    median, lo, hi = {
        "car": (120000, 40000, 400000),
        "flat_deposit": (50000, 10000, 300000),
        "tuition": (12000, 3000, 60000),
        "wedding": (60000, 10000, 300000),
        "renovation": (30000, 5000, 150000),
    }[what]
    total = lognormal(rng, median, 0.5, lo, hi)
    payee = w.bank_account(rng.choice((*BANKS, *OUTSIDE_BANKS)))
    parts = 1 if total < 50000 or rng.random() < 0.5 else rng.randint(2, 3)  # daily mobile limits
    refs, t = set(), at
    src = max(q.banks, key=lambda b: w.rng.random())
    first = ""
    for _ in range(parts):
        ref = w.transfer(
            t,
            q.phone,
            src,
            payee,
            money(total / parts, round_to=100),
            channel="mobile" if rng.random() < 0.8 else "counter",
        )
        first = first or ref
        refs.add(ref)
        t += rng.uniform(1, 20) * MINUTE
    return Negative("large_first_transfer", q.phone, first, at, at, t, refs)


def _fan_in(
    w: World,
    kind: str,
    owner: Person,
    account: tuple[str, str],
    payers: list[Person],
    at: float,
    window: float,
    amount: tuple[float, float, float, float],
    payout_after: float,
    payout_to: tuple[str, str],
) -> Negative:
    rng = w.rng
    refs, total, last = set(), 0.0, at
    for p in payers:
        t = at + rng.random() * window
        a = lognormal(rng, *amount)
        total += a
        last = max(last, t)
        refs.add(
            w.money_out(
                t,
                p.phone,
                p.wallet if account[0] in PAYMENTS else rng.choice(p.banks),
                account,
                money(a, round_to=100 if kind == "landlord" else 0),
            )
        )
    t = last + payout_after
    ref = w.money_out(t, owner.phone, account, payout_to, money(total * rng.uniform(0.85, 0.99)))
    refs.add(ref)
    return Negative(kind, owner.phone, ref, t, at, t, refs, f"{account[0]}/{account[1]}")


def landlord(w: World, q: Person, at: float) -> Negative:
    """Tenants pay on rent day, mostly in the evening; the landlord pays the mortgage that night or the
    next morning."""
    rng = w.rng
    tenants = rng.sample(w.people, rng.randint(4, 12))
    return _fan_in(
        w,
        "landlord",
        q,
        q.banks[0],
        tenants,
        at,
        rng.uniform(2, 8) * HOUR,
        (2200, 0.3, 800, 6000),
        rng.uniform(0.3, 14) * HOUR,
        w.bank_account(rng.choice(BANKS)),
    )


def group_purchase(w: World, q: Person, at: float) -> Negative:
    """The building's group-buy leader posts the fruit order; neighbours pay within the hour, the leader
    pays the farm (an account of its own, new each season) soon after."""
    rng = w.rng
    neighbours = rng.sample(w.people, rng.randint(12, 40))
    farm = (
        w.wallet_account(rng.choice(PAYMENTS))
        if rng.random() < 0.5
        else w.bank_account(rng.choice(OUTSIDE_BANKS))
    )
    return _fan_in(
        w,
        "group_purchase",
        q,
        q.wallet,
        neighbours,
        at,
        rng.uniform(0.5, 2) * HOUR,
        (80, 0.6, 10, 600),
        rng.uniform(10, 120) * MINUTE,
        farm,
    )


def payroll(w: World, q: Person, at: float) -> Negative:
    rng = w.rng
    refs, t, first = set(), at, ""
    src = q.banks[0]
    for _ in range(rng.randint(6, 20)):
        worker = rng.choice(rng.choice(w.people).banks)
        ref = w.transfer(t, q.phone, src, worker, money(lognormal(rng, 5000, 0.3, 2500, 15000), round_to=100))
        first = first or ref
        refs.add(ref)
        t += rng.uniform(0.5, 6) * MINUTE
    return Negative("payroll", q.phone, first, at, at, t, refs, f"{src[0]}/{src[1]}")


def new_device(w: World, q: Person, at: float) -> Negative:
    rng = w.rng
    refs = set()
    t = at
    if rng.random() < 0.3:  # lost the phone: a replacement SIM at the operator's shop first
        refs.add(w.sim_change(t, q))
        t += rng.uniform(0.5, 5) * HOUR
    device = f"dev-{rng.getrandbits(48):012x}"
    for bank in q.banks:  # (the routine's logins keep the old device id: a simplification)
        refs.add(w.login(t, q.phone, bank, device, True))
        t += rng.uniform(1, 60) * MINUTE
    ref = w.transfer(
        t + rng.uniform(5, 90) * MINUTE,
        q.phone,
        q.banks[0],
        rng.choice(q.family),
        money(lognormal(rng, 1500, 0.8, 100, 20000), round_to=100),
    )
    refs.add(ref)
    for _ in range(rng.randint(1, 4)):
        refs.add(
            w.pay(
                t + rng.uniform(0, 4) * HOUR,
                q.phone,
                q.wallet,
                rng.choice(q.merchants),
                money(lognormal(rng, 40, 1.0, 2, 2000)),
            )
        )
    return Negative("new_device", q.phone, ref, t, at, t + 4 * HOUR, refs)


def travel(w: World, q: Person, at: float) -> Negative:
    rng = w.rng
    refs: set[str] = set()
    nights = rng.randint(1, 4)
    hotel = w.wallet_account(rng.choice(PAYMENTS))
    train = w.merchants[0] if rng.random() < 0.5 else w.wallet_account(PAYMENTS[0])
    refs.add(
        w.pay(
            at - rng.uniform(1, 48) * HOUR,
            q.phone,
            q.wallet,
            train,
            money(lognormal(rng, 300, 0.5, 40, 2000)),
        )
    )
    first = w.pay(at, q.phone, q.wallet, hotel, money(lognormal(rng, 450, 0.5, 120, 3000) * nights))
    refs.add(first)
    for d in range(nights + 1):
        for _ in range(rng.randint(2, 6)):
            t = at + d * DAY + rng.uniform(-6, 10) * HOUR
            refs.add(
                w.pay(
                    t,
                    q.phone,
                    q.wallet,
                    w.wallet_account(rng.choice(PAYMENTS)),
                    money(lognormal(rng, 90, 0.9, 5, 3000)),
                )
            )
        for _ in range(rng.randint(0, 3)):  # the driver, the hotel, a tour guide
            refs.add(
                w.call(
                    at + d * DAY + rng.uniform(-6, 10) * HOUR,
                    q,
                    w.new_phone(),
                    int(lognormal(rng, 60, 0.8, 10, 900)),
                )
            )
    return Negative("travel", q.phone, first, at, at, at + nights * DAY, refs)


RUN = {
    "unknown_long_call": unknown_long_call,
    "large_first_transfer": large_first_transfer,
    "landlord": landlord,
    "group_purchase": group_purchase,
    "payroll": payroll,
    "new_device": new_device,
    "travel": travel,
}


def shops(w: World) -> None:
    """A third of the small merchants belong to people of the prefecture, who move the day's takings
    from the shop's wallet to their card at closing time."""
    rng = w.rng
    for merchant in w.merchants[10:]:
        if rng.random() > 0.3:
            continue
        owner = rng.choice(w.people)
        for day in range(w.days):
            t = w.t0 + day * DAY + rng.uniform(20.5, 23.5) * HOUR
            ref = w.withdraw(
                t, owner.phone, merchant, owner.banks[0], money(lognormal(rng, 1500, 0.8, 100, 20000))
            )
            w.negatives.append(
                Negative("shop", owner.phone, ref, t, t - 12 * HOUR, t, {ref}, f"{merchant[0]}/{merchant[1]}")
            )


def plan(w: World) -> None:
    rng, p = w.rng, w.params
    for kind, rate in p.negatives_per_1000_day.items():
        n = round(rate * len(w.people) / 1000 * w.days)
        for _ in range(n):
            q = rng.choice(w.people)
            day = rng.randrange(w.days)
            at = w.time_of_day(day)
            if kind in ("landlord", "group_purchase", "payroll", "large_first_transfer"):
                at = w.t0 + day * DAY + rng.uniform(9, 20) * HOUR  # office and waking hours
            w.negatives.append(RUN[kind](w, q, at))
    shops(w)
