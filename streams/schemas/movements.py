"""Scorer-internal: a money movement seen from one account's side, re-keyed by that account so
that an account's inflows (reported by the payers' banks) and outflows (by its own bank) meet."""

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


movement_adapter: TypeAdapter[Movement] = TypeAdapter(Movement)
