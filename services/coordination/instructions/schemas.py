"""API shapes of instructions, as officers and as institutions see them."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from streams.schemas.events import Account, Amount, Instant, InstitutionId, NonBlank
from streams.schemas.instructions import Beneficiary, Held, InstructionMessage, Kind, Outcome, QueryResult


class InstructionCreate(BaseModel):
    """What an officer asks for. extend, release and return name the instruction they act on
    (`parent_id`) and take its institution and account from it."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    institution_id: InstitutionId | None = None
    account: Account | None = None
    amount: Amount | None = Field(None, description="stop-payment, freeze (optional limit), release, return")
    since: Instant | None = Field(None, description="query: transfers since (default: the loss time)")
    parent_id: uuid.UUID | None = None
    document_number: NonBlank | None = Field(None, max_length=64, description="freeze, extend, release")
    beneficiary: Beneficiary | None = Field(
        None, description="return: default the victim's account on the case"
    )
    reason: str | None = Field(None, max_length=2000)
    request_id: uuid.UUID | None = Field(
        None,
        description="the client's idempotency key: the same request sent again (a double submit, a retry"
        " after a timeout) issues nothing more and is answered with the instruction the first issued",
    )


class InstructionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    case_id: uuid.UUID
    kind: str
    status: str
    institution_id: str
    account: str
    amount: Decimal | None
    since: datetime | None
    parent_id: uuid.UUID | None
    beneficiary_institution: str | None
    beneficiary_account: str | None
    case_number: str
    document_number: str | None
    reason: str | None
    issued_by: str
    issued_by_unit: str
    approved_by: str | None
    approved_at: datetime | None
    issued_at: datetime | None
    delivered_at: datetime | None
    answered_at: datetime | None
    ack_due_at: datetime | None
    exec_due_at: datetime | None
    expires_at: datetime | None
    renewals: int
    overdue: str | None
    escalated_at: datetime | None
    held_amount: Decimal | None
    outcome_reason: str | None
    decision_note: str | None
    created_at: datetime
    returnable_amount: Decimal | None = Field(
        None, description="a freeze's released funds not yet returned nor being returned (in a case's detail)"
    )


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


class ResponseCreate(BaseModel):
    """An institution's answer through the API (the same fields as on the Kafka response topic)."""

    model_config = ConfigDict(extra="forbid")

    response_id: uuid.UUID = Field(description="chosen by the institution; a repeat is answered, not redone")
    outcome: Outcome
    held_amount: Held | None = None
    reason: str | None = Field(None, max_length=1000)
    query_result: QueryResult | None = None
    responded_at: Instant | None = Field(
        None, description="when the institution answered; left out, when Stopline received the answer"
    )


class ResponseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    response_id: uuid.UUID
    instruction_id: uuid.UUID
    institution_id: str
    outcome: str
    held_amount: Decimal | None
    reason: str | None
    query_result: dict[str, object] | None
    channel: str
    responded_at: datetime
    received_at: datetime


class InstitutionView(BaseModel):
    """What an institution sees of an instruction addressed to it: the message and where it stands."""

    status: str
    message: InstructionMessage


class InstitutionPage(BaseModel):
    items: list[InstitutionView]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")
