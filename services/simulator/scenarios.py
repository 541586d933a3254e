"""Fraud scenarios with ground truth: an impersonation call followed by a large transfer to a mule, and a
mule account collecting from many victims then paying out (the live demo's two), plus the training
typologies of `typologies`. Scenario time is compressed by `time_scale`."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.simulator import benign, typologies
from services.simulator.model import BANKS, CENT, IdSource, SimEvent, money, stamp
from services.simulator.normal import WalletChannel
from services.simulator.population import Numbers, Person, Population
from services.simulator.typologies import Collector

TYPOLOGIES = ("call_then_transfer", "mule_fan_in")

# Ranges of the scenario parameters, in scenario seconds (divided by the time scale when played).
CALL_MINUTES = (8.0, 60.0)
CALL_TO_TRANSFER_S = (10.0, 180.0)
SPLIT_GAP_S = (20.0, 90.0)
IMPERSONATION_AMOUNT = (5_000.0, 200_000.0)
FAN_IN_VICTIMS = (6, 20)
FAN_IN_SPAN_S = (60.0, 300.0)
FAN_IN_AMOUNT = (1_000.0, 50_000.0)
PAYOUT_DELAY_S = (20.0, 120.0)
PAYOUT_GAP_S = (5.0, 30.0)
PAYOUT_SHARE = (0.80, 0.95)
NEXT_LAYER = (1, 3)


@dataclass(frozen=True, slots=True)
class Step:
    delay_s: float  # real seconds after the scenario's start
    event: SimEvent


@dataclass
class Scenario:
    scenario_id: str
    typology: str
    started_at: datetime
    steps: list[Step]
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def length_s(self) -> float:
        return self.steps[-1].delay_s if self.steps else 0.0

    @property
    def event_refs(self) -> list[str]:
        return [s.event.ref for s in self.steps]


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def split(total: Decimal, parts: int, rng: random.Random) -> list[Decimal]:
    """Split an amount into `parts` positive amounts summing exactly to it."""
    weights = [rng.uniform(1.0, 5.0) for _ in range(parts)]
    amounts = [(total * Decimal(w / sum(weights))).quantize(CENT) for w in weights]
    amounts[-1] = total - sum(amounts[:-1], Decimal(0))
    return amounts


class ScenarioFactory:
    def __init__(
        self,
        population: Population,
        ids: IdSource,
        *,
        seed: int = 1,
        time_scale: float = 10.0,
        kinds: tuple[str, ...] = TYPOLOGIES,
        wallet_share: float = 0.0,
        fresh_payee_share: float = 0.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        unknown = set(kinds) - set(TYPOLOGIES) - set(typologies.BUILDERS) - set(benign.BUILDERS)
        if not kinds or unknown:
            raise ValueError(f"unknown typologies {sorted(unknown)}" if unknown else "no typology to draw")
        self.kinds = kinds  # drawn from when `make` is not told which typology
        self.population = population
        self.ids = ids
        self.time_scale = time_scale
        # Seeded by the run tag too: a replayed scam (same fraudster number, same mule account) would be
        # rightly seen by the scorer as a known caller and a known payee, and not alerted again.
        self.rng = random.Random(f"scenarios:{seed}:{ids.run_tag}")
        self.numbers = Numbers(self.rng, population.numbers.used)
        # The hard negatives' payments made from a wallet (0: all through the bank).
        self.wallet = WalletChannel(wallet_share, random.Random(f"scenarios-wallet:{seed}:{ids.run_tag}"))
        # Which of the hard negatives' one-off payees are accounts nobody paid before (world.py), and their
        # numbers: a stream of their own, so the share moves no other draw of the seed.
        self.fresh_payee_share = fresh_payee_share
        self.fresh_rng = random.Random(f"scenarios-fresh:{seed}:{ids.run_tag}")
        self.fresh_numbers = Numbers(self.fresh_rng, population.numbers.used)
        self.collectors: list[Collector] = []  # collection accounts shared by the training typologies
        self._n = 0

    def make(self, start: datetime, typology: str | None = None) -> Scenario:
        typology = typology or self.rng.choice(self.kinds)
        self._n += 1
        scenario_id = f"scn-{self.ids.run_tag}-{self._n}"
        if typology == "call_then_transfer":
            return self.impersonation(scenario_id, start)
        if typology == "mule_fan_in":
            return self.mule_fan_in(scenario_id, start)
        if typology in typologies.BUILDERS:
            return typologies.build(self, scenario_id, typology, start)
        if typology in benign.BUILDERS:
            return benign.build(self, scenario_id, typology, start)
        raise ValueError(f"unknown typology {typology}")

    def _event(
        self, scenario_id: str, institution: str, phone: str, kind: str, at: datetime, **fields: Any
    ) -> SimEvent:
        body: dict[str, Any] = {"type": kind, "event_id": self.ids.next(), "occurred_at": stamp(at), **fields}
        return SimEvent(institution, phone, body, scenario_id)

    def _transfer(
        self, sid: str, at: datetime, payer: tuple[str, str, str], payee: tuple[str, str], amount: Decimal
    ) -> SimEvent:
        bank, account, phone = payer
        return self._event(
            sid,
            bank,
            phone,
            "bank.transfer",
            at,
            payer_account=account,
            payer_phone=phone,
            payee_account=payee[1],
            payee_institution=payee[0],
            amount=money(amount),
            currency="CNY",
            channel="mobile",
        )

    def impersonation(self, sid: str, start: datetime) -> Scenario:
        rng, scale = self.rng, self.time_scale
        victim = self._victim()
        fraudster = self.numbers.phone()
        mule_bank = rng.choice(BANKS)
        mule_account = self.numbers.bank_account(mule_bank)
        duration_s = int(rng.uniform(*CALL_MINUTES) * 60)
        reported = rng.random() < 0.25
        # The call ends at the scenario's start and is reported then, dated at its start, as a CDR is.
        call = self._event(
            sid,
            victim.operator,
            victim.phone,
            "telecom.call",
            start - timedelta(seconds=duration_s),
            caller=fraudster,
            callee=victim.phone,
            duration_s=duration_s,
            caller_reported=reported,
        )
        steps = [Step(0.0, call)]
        gap = rng.uniform(*CALL_TO_TRANSFER_S) / scale
        if rng.random() < 0.7:
            # Victims usually open their banking app just before paying.
            at = gap * rng.uniform(0.3, 0.9)
            login = self._event(
                sid,
                victim.bank,
                victim.phone,
                "bank.login",
                start + timedelta(seconds=at),
                account=victim.account,
                holder_phone=victim.phone,
                device_id=victim.device_id,
                new_device=False,
            )
            steps.append(Step(at, login))
        total = Decimal(money(log_uniform(rng, *IMPERSONATION_AMOUNT)))
        parts = rng.choices((1, 2, 3), (0.7, 0.2, 0.1))[0]
        transfers: list[SimEvent] = []
        at = gap
        for amount in split(total, parts, rng):
            payer = (victim.bank, victim.account, victim.phone)
            event = self._transfer(
                sid, start + timedelta(seconds=at), payer, (mule_bank, mule_account), amount
            )
            transfers.append(event)
            steps.append(Step(at, event))
            at += rng.uniform(*SPLIT_GAP_S) / scale
        truth = {
            "victim_phones": [victim.phone],
            "victim_accounts": [{"institution": victim.bank, "account": victim.account}],
            "fraudster_phone": fraudster,
            "caller_reported": reported,
            "call_duration_s": duration_s,
            "mule": {"institution": mule_bank, "account": mule_account},
            "amount_total": str(total),
            "transfers": len(transfers),
            "triggering_event_ids": [e.ref for e in transfers],
        }
        return self._finish(sid, "call_then_transfer", start, steps, truth)

    def mule_fan_in(self, sid: str, start: datetime) -> Scenario:
        rng, scale = self.rng, self.time_scale
        mule_bank = rng.choice(BANKS)
        mule_account = self.numbers.bank_account(mule_bank)
        mule_phone = self.numbers.phone()
        steps: list[Step] = []
        if rng.random() < 0.5:
            opened = self._event(
                sid,
                mule_bank,
                mule_phone,
                "bank.account_opened",
                start,
                account=mule_account,
                holder_phone=mule_phone,
            )
            steps.append(Step(0.0, opened))
        victims = rng.sample(self.population.people, rng.randint(*FAN_IN_VICTIMS))
        span = rng.uniform(*FAN_IN_SPAN_S) / scale
        offsets = sorted(rng.uniform(0, span) for _ in victims)
        inflow = Decimal(0)
        inbound: list[SimEvent] = []
        for victim, at in zip(victims, offsets, strict=True):
            amount = Decimal(money(log_uniform(rng, *FAN_IN_AMOUNT)))
            inflow += amount
            payer = (victim.bank, victim.account, victim.phone)
            event = self._transfer(
                sid, start + timedelta(seconds=at), payer, (mule_bank, mule_account), amount
            )
            inbound.append(event)
            steps.append(Step(at, event))
        next_layer = [
            (bank, self.numbers.bank_account(bank)) for bank in rng.choices(BANKS, k=rng.randint(*NEXT_LAYER))
        ]
        payout_total = (inflow * Decimal(str(round(rng.uniform(*PAYOUT_SHARE), 4)))).quantize(CENT)
        at = offsets[-1] + rng.uniform(*PAYOUT_DELAY_S) / scale
        outbound: list[SimEvent] = []
        for payee, amount in zip(next_layer, split(payout_total, len(next_layer), rng), strict=True):
            event = self._transfer(
                sid, start + timedelta(seconds=at), (mule_bank, mule_account, mule_phone), payee, amount
            )
            outbound.append(event)
            steps.append(Step(at, event))
            at += rng.uniform(*PAYOUT_GAP_S) / scale
        truth = {
            "victim_phones": [v.phone for v in victims],
            "victim_accounts": [{"institution": v.bank, "account": v.account} for v in victims],
            "mule": {"institution": mule_bank, "account": mule_account, "phone": mule_phone},
            "next_layer": [{"institution": b, "account": a} for b, a in next_layer],
            "amount_in": str(inflow),
            "amount_out": str(payout_total),
            "triggering_event_ids": [e.ref for e in inbound + outbound],
        }
        return self._finish(sid, "mule_fan_in", start, steps, truth)

    def _victim(self) -> Person:
        return self.rng.choice(self.population.people)

    def _finish(
        self, sid: str, typology: str, start: datetime, steps: list[Step], truth: dict[str, Any]
    ) -> Scenario:
        steps.sort(key=lambda s: s.delay_s)
        scenario = Scenario(sid, typology, start, steps)
        scenario.truth = {
            "scenario_id": sid,
            "typology": typology,
            "started_at": stamp(start),
            "event_ids": scenario.event_refs,
            **truth,
        }
        return scenario
