"""API shapes of cases."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.coordination.instructions.schemas import InstructionRead
from streams.schemas.events import Account, Amount, Instant, InstitutionId, NonBlank, Phone

# confirmed_fraud: money was lost to a scam (or would have been); false_alarm: no scam; undetermined:
# the case could not tell. The first two label the case's alerts for training; see models.training.feedback.
Outcome = Literal["confirmed_fraud", "false_alarm", "undetermined"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
MAX_DESTINATIONS = 100  # the accounts a case is opened with; more join its money flow as they are learnt


def outcome_problem(status: str | None, outcome: Outcome | None) -> str | None:
    """What is wrong with an update's status and outcome together (an outcome exactly when closing)."""
    closing = status == "closed"
    if closing and outcome is None:
        return f"closing a case states its outcome: {', '.join(OUTCOMES[:-1])} or {OUTCOMES[-1]}"
    if outcome is not None and not closing:
        return 'an outcome is stated only when closing the case (status "closed")'
    return None


class Destination(BaseModel):
    """An account the victim's money went to, as the victim (or the alert) reports it."""

    model_config = ConfigDict(extra="forbid")

    institution_id: InstitutionId
    account: Account
    amount: Amount
    at: Instant


class Victim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    phone: Phone | None = None
    institution_id: InstitutionId | None = None
    account: Account | None = Field(None, description="where returned funds go")


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_number: NonBlank = Field(max_length=64, description="the police case registration number")
    title: NonBlank = Field(max_length=200)
    source: Literal["alert", "report"]
    alert_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=500, description="required when source is alert"
    )
    victim: Victim = Field(default_factory=Victim)
    amount_lost: Amount
    lost_at: Instant
    destinations: list[Destination] = Field(default_factory=list, max_length=MAX_DESTINATIONS)

    @model_validator(mode="after")
    def _alert_source(self) -> CaseCreate:
        if self.source == "alert" and not self.alert_ids:
            raise ValueError("a case opened from an alert names it in alert_ids")
        return self


class CaseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "closed"] | None = None
    assignee: NonBlank | None = Field(None, max_length=120)
    outcome: Outcome | None = Field(
        None, validate_default=True, description="what the case found: required to close it, only then"
    )

    @field_validator("outcome")
    @classmethod
    def _outcome_with_closing(cls, value: Outcome | None, info: ValidationInfo) -> Outcome | None:
        # Declared after `status`, so a valid status is in info.data; an invalid one is reported alone.
        if "status" not in info.data:
            return value
        if (problem := outcome_problem(info.data["status"], value)) is not None:
            raise ValueError(problem)
        return value


class OpenWork(BaseModel):
    """An instruction that keeps its case from being closed: an item of `details.blocking` in the 409."""

    model_config = ConfigDict(from_attributes=True)

    instruction_id: uuid.UUID = Field(validation_alias="id")
    kind: str
    status: str
    institution_id: str
    expires_at: datetime | None  # a hold lapses by itself then


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: NonBlank = Field(max_length=10_000)


class LinkAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alert_id: uuid.UUID


class NoteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    author: str
    text: str
    at: datetime


class CaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    case_number: str
    unit: str
    status: str
    source: str
    title: str
    opened_by: str
    assignee: str | None
    victim_name: str | None
    victim_phone: str | None
    victim_institution: str | None
    victim_account: str | None
    amount_lost: Decimal
    lost_at: datetime
    opened_at: datetime
    closed_at: datetime | None
    outcome: Outcome | None


class CaseDetail(CaseRead):
    alert_ids: list[uuid.UUID]
    notes: list[NoteRead]
    instructions: list[InstructionRead]
