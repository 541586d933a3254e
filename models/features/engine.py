"""Events in, feature vectors out: the one code path from an institution event to the features of a
money-out, shared by the live scorer (per Kafka partition) and by training (an offline replay)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.features.account import AccountState
from models.features.person import CallSeen, MoneyOut, PersonState
from streams.schemas import events as ev

# A wallet's counterpart bank account is named without its bank (top-ups and withdrawals do not say).
UNKNOWN_INSTITUTION = "unknown"


@dataclass(frozen=True, slots=True)
class PersonOutcome:
    """A money-out with its person-side features, to be joined with its payee's features and scored."""

    person_phone: str
    money: MoneyOut
    features: list[float]
    call: CallSeen | None
    rescore: bool  # scored before; scored again as a call, SIM change, link SMS or login before it came late
    to_own_account: bool  # the payee is the person's own account (`PersonState.owns`): not scored


@dataclass(frozen=True, slots=True)
class WalletFlow:
    """A wallet top-up (money in) or withdrawal (money out): the holder's own money, so not scored, but a
    money movement of the wallet account all the same: a wallet that collects and withdraws pays out."""

    person_phone: str
    direction: Literal["in", "out"]
    institution: str  # the payment provider holding the wallet
    account: str  # the wallet
    counterparty: str  # the bank account it was topped up from or withdrawn to
    amount: float
    at: float
    ref: str


Outcome = PersonOutcome | WalletFlow


def apply_person_event(
    people: dict[str, PersonState], institution: str, event: ev.EventBase, ref: str, horizon_s: float
) -> list[Outcome]:
    """Update the person's state with one event; return the money-outs to score because of it and the
    wallet movements to count."""
    phone = event.person_phone
    person = people.get(phone)
    if person is None:
        person = people[phone] = PersonState()
    at = event.occurred_at.timestamp()
    if person.seen(at):
        person.prune(person.last_seen, horizon_s)
    if isinstance(event, ev.Call | ev.Sms | ev.SimChange):
        person.telecom_at = at if person.telecom_at is None else max(person.telecom_at, at)
    if isinstance(event, ev.Call):
        known = person.record_contact(event.caller, at)
        call = CallSeen(event.caller, at, at + event.duration_s, event.caller_reported, known, ref)
        return _again(phone, person, person.record_call(call))
    if isinstance(event, ev.Sms):
        known = person.record_contact(event.sender, at)
        if event.contains_link and not known:
            return _again(phone, person, person.record_link_sms(event.sender, at))
    elif isinstance(event, ev.SimChange):
        return _again(phone, person, person.record_sim_change(at))
    elif isinstance(event, ev.Login):
        if event.new_device:
            return _again(phone, person, person.record_new_device(at))
        person.record_account(f"{institution}/{event.account}", at)
    elif isinstance(event, ev.TopUp):
        person.topup_at = at if person.topup_at is None else max(person.topup_at, at)
        return [
            WalletFlow(
                phone, "in", institution, event.account, event.source_account, float(event.amount), at, ref
            )
        ]
    elif isinstance(event, ev.Withdrawal):
        return [
            WalletFlow(
                phone,
                "out",
                institution,
                event.account,
                event.destination_account,
                float(event.amount),
                at,
                ref,
            )
        ]
    elif isinstance(event, ev.Transfer | ev.Payment):
        payee = f"{event.payee_institution}/{event.payee_account}"
        money = MoneyOut(
            at=at,
            payee=payee,
            amount=float(event.amount),
            payee_new=person.new_money_out(at, payee),
            ref=ref,
            institution=institution,
            account=event.payer_account,
            payee_account=event.payee_account,
            payee_institution=event.payee_institution,
            wallet=isinstance(event, ev.Payment),
        )
        person.record_out(money)
        person.record_account(f"{institution}/{event.payer_account}", at)
        return [_outcome(phone, person, money, rescore=False)]
    return []


def _again(phone: str, person: PersonState, outs: list[MoneyOut]) -> list[Outcome]:
    """The money-outs a late event tells about, scored again."""
    return [_outcome(phone, person, o, rescore=True) for o in outs]


def _outcome(phone: str, person: PersonState, money: MoneyOut, *, rescore: bool) -> PersonOutcome:
    features, call = person.features(money)
    return PersonOutcome(phone, money, features, call, rescore, person.owns(money.payee, money.at))


def account(accounts: dict[str, AccountState], key: str) -> AccountState:
    state = accounts.get(key)
    if state is None:
        state = accounts[key] = AccountState()
    return state
