"""Scorer-internal: a money movement seen from one account's side, re-keyed by that account so
that an account's inflows (reported by the payers' banks) and outflows (by its own bank) meet.

An inflow also carries what stage one knew about the payer (the person-side features of the money-out,
the call before it), so stage two can join it with the payee account's features and score it."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, TypeAdapter

from streams.schemas.events import Account, InstitutionId, Phone


class Movement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: Literal["in", "out"]
    account: Account
    institution: InstitutionId
    counterparty: Account
    counterparty_institution: InstitutionId
    amount: float
    occurred_at: AwareDatetime
    event_ref: str
    holder_phone: Phone | None = None  # known for outflows: the account holder's phone on file
    payer_phone: Phone | None = None  # inflows: the payer, who is warned if this looks like a scam
    person_features: list[float] | None = None  # inflows: models.features.person.PERSON_FEATURES
    feature_set: str | None = None  # the FEATURE_SET_HASH of the code that computed them
    call_ref: str | None = None  # the call before the money-out (the most suspicious one), if any
    call_caller: Phone | None = None  # its caller, checked against the blocklist
    rescore: bool = False  # already counted; scored again because a call before it arrived late


movement_adapter: TypeAdapter[Movement] = TypeAdapter(Movement)
