"""Scorer-internal: a money movement seen from one account's side, re-keyed by that account so
that an account's inflows (reported by the payers' banks) and outflows (by its own bank) meet.

An inflow also carries what stage one knew about the payer (the person-side features of the money-out,
the call before it), so stage two can join it with the payee account's features and score it."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from streams.schemas.alerts import MAX_PAYMENTS, AlertPayment
from streams.schemas.events import Account, InstitutionId, Phone


class OpenEpisode(BaseModel):
    """The payer's alert still open when the money-out was made (stage one learns it from the alerts
    topic): a later payment of the episode updates that alert instead of raising another."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    alert_id: uuid.UUID
    revision: int = Field(ge=1)
    incident_id: uuid.UUID | None = None
    payments: list[AlertPayment] = Field(default_factory=list, max_length=MAX_PAYMENTS)
    typology: str = Field(max_length=40, description="the alert's typology")


class Movement(BaseModel):
    # A tolerant reader: stage two ignores what a newer stage one adds (docs/operations.md, upgrades).
    model_config = ConfigDict(extra="ignore", frozen=True)

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
    rescore: bool = False  # counted already; scored again as a call, SIM change, SMS or login came late
    # Inflows: the payee is the payer's own account (stage one: `PersonState.owns`); money moved between a
    # person's accounts has not left them, so it is counted, not scored.
    to_own_account: bool = False
    episode: OpenEpisode | None = None  # inflows: the payer's open alert, if any
    # Inflows: the id a new alert of the payer takes (stage one's `episodes.opening`); absent from an older
    # scorer's records, where the payment's own ref names it.
    opens: uuid.UUID | None = None
    # Inflows: the event time stage one's partition state covered at the money-out (its warm-up: a younger
    # state sees every caller and payee as new); absent from an older scorer's records.
    person_history_s: float | None = Field(default=None, ge=0)


movement_adapter: TypeAdapter[Movement] = TypeAdapter(Movement)
