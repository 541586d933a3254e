"""Events in, feature vectors out: the one code path from an institution event to the features of a
money-out, shared by the live scorer (per Kafka partition) and by training (an offline replay)."""

from __future__ import annotations

from dataclasses import dataclass

from models.features.account import AccountState
from models.features.person import CallSeen, MoneyOut, PersonState
from streams.schemas import events as ev

LOCAL_OFFSET_S = 8 * 3600  # the prefecture keeps Beijing time (UTC+8, no daylight saving)


def hour_of_day(at: float) -> int:
    return int(((at + LOCAL_OFFSET_S) % 86_400) // 3600)


@dataclass(frozen=True, slots=True)
class PersonOutcome:
    """A money-out with its person-side features, to be joined with its payee's features and scored."""

    person_phone: str
    money: MoneyOut
    features: list[float]
    call: CallSeen | None
    rescore: bool  # scored before; scored again because a call that preceded it arrived late


def apply_person_event(
    people: dict[str, PersonState], institution: str, event: ev.EventBase, ref: str, horizon_s: float
) -> list[PersonOutcome]:
    """Update the person's state with one event; return the money-outs to score because of it."""
    phone = event.person_phone
    person = people.get(phone)
    if person is None:
        person = people[phone] = PersonState()
    at = event.occurred_at.timestamp()
    if person.seen(at):
        person.prune(person.last_seen, horizon_s)
    if isinstance(event, ev.Call):
        known = person.record_contact(event.caller, at)
        call = CallSeen(event.caller, at, at + event.duration_s, event.caller_reported, known, ref)
        return [_outcome(phone, person, o, rescore=True) for o in person.record_call(call)]
    if isinstance(event, ev.Sms):
        known = person.record_contact(event.sender, at)
        if event.contains_link and not known:
            person.record_link_sms(event.sender, at)
    elif isinstance(event, ev.SimChange):
        person.sim_change_at = at
    elif isinstance(event, ev.Login) and event.new_device:
        person.new_device_at = at
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
        return [_outcome(phone, person, money, rescore=False)]
    return []


def _outcome(phone: str, person: PersonState, money: MoneyOut, *, rescore: bool) -> PersonOutcome:
    features, call = person.features(money, hour_of_day(money.at))
    return PersonOutcome(phone, money, features, call, rescore)


def account(accounts: dict[str, AccountState], key: str) -> AccountState:
    state = accounts.get(key)
    if state is None:
        state = accounts[key] = AccountState()
    return state
