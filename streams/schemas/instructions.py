"""Messages between Stopline and institutions about instructions: the instruction (or a notice about
it) on `instructions.<institution>` and in webhooks, the institution's answer on
`instruction-responses` or the API, and escalations to supervisors.

The instruction id is the idempotency key end to end: it is the Kafka message key, the webhook's
`Idempotency-Key` header and `message_id` of the instruction itself; a notice about an instruction
(expired, cancelled) has `message_id` `<instruction id>:<notice>`. A receiver that remembers the
message ids it has processed drops repeats. A cancelled notice is final: the instruction, if it comes
after it (its delivery was under way as it was withdrawn), is not executed.

An answer produced to the response topic that Stopline refused comes back to its sender on the same
topic or webhook as `answer_refused`, one per refused record (`message_id` `refused:<digest of the
record>`): nothing of the answer was applied, and nothing in the notice is to be executed.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from streams.schemas.events import Account, Amount, Instant, InstitutionId, NonBlank


class Kind(StrEnum):
    """What an instruction asks: the one spelling, on the wire and in coordination's CHECK constraint."""

    QUERY = "query"
    STOP_PAYMENT = "stop_payment"
    FREEZE = "freeze"
    EXTEND = "extend"
    RELEASE = "release"
    RETURN_FUNDS = "return_funds"


KINDS = tuple(Kind)
Outcome = Literal["acknowledged", "executed", "partially_executed", "rejected", "account_not_found"]
Notice = Literal["expired", "cancelled"]
Held = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=2, description="CNY")]


class LegalBasis(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Not NonBlank: it is rebuilt from the stored instruction, and one stored before cases refused a blank
    # number must still go out (cases' own input refuses it now).
    case_number: str = Field(min_length=1, max_length=64)
    document_number: str | None = Field(None, max_length=64, description="required for freeze and release")


class Beneficiary(BaseModel):
    """Where returned funds go: the victim's account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    institution: InstitutionId
    account: Account


class InstructionMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str = Field(description="idempotency key: the instruction id, or `<id>:<notice>`")
    type: Literal["instruction", "notice"]
    notice: Notice | None = None
    instruction_id: uuid.UUID
    kind: Kind
    institution_id: InstitutionId
    account: Account
    amount: Amount | None = Field(None, description="amount to stop, freeze, release or return")
    since: AwareDatetime | None = Field(None, description="query: transfers out of the account since")
    parent_instruction_id: uuid.UUID | None = Field(None, description="extend/release/return: of which")
    beneficiary: Beneficiary | None = None
    legal_basis: LegalBasis
    issued_at: AwareDatetime
    expires_at: AwareDatetime | None = Field(None, description="when a stop-payment or freeze lapses")
    ack_due_at: AwareDatetime
    exec_due_at: AwareDatetime
    schema_version: Literal[1] = 1


class Holder(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: NonBlank = Field(max_length=200)
    id_number_last4: str | None = Field(None, pattern=r"^[0-9Xx]{4}$")
    phone: str | None = Field(None, max_length=20)


class OutgoingTransfer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    transfer_id: NonBlank = Field(max_length=64, description="unique among the answer's transfers")
    to_institution: InstitutionId
    to_account: Account
    amount: Amount
    at: Instant


# At their longest (a 64-character id, an institution of 40, an account of 34, 999999999999.99, a time to
# the microsecond with its offset) 10,000 transfers are 2.6 MB of compact JSON, 2.7 MB with the spaces of
# Python's default encoder: the coordination API takes bodies of up to 3,000,000 bytes for them, and on Kafka
# a producer compresses so large an answer into the topic's 1 MiB (JSON of numbers and ids shrinks
# tenfold). A busy mule account is the one whose answer matters most: it is not cut short.
MAX_TRANSFERS = 10_000


class QueryResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    holder: Holder
    balance: Held
    transfers: list[OutgoingTransfer] = Field(
        default_factory=list,
        max_length=MAX_TRANSFERS,
        description=f"at most {MAX_TRANSFERS:,}",
    )

    @field_validator("transfers")
    @classmethod
    def _one_transfer_per_id(cls, transfers: list[OutgoingTransfer]) -> list[OutgoingTransfer]:
        """A transfer id names one transfer out of the queried account: two of the same id would be
        recorded as one (the tree keeps a transfer once, by its id), the other's money lost from the case.
        Refused, each repeat named where it is (`transfers.<n>.transfer_id`)."""
        first: dict[str, int] = {}
        repeats: list[InitErrorDetails] = []
        for n, t in enumerate(transfers):
            seen = first.setdefault(t.transfer_id, n)
            if seen != n:
                problem = PydanticCustomError(
                    "transfer_id_repeated", "transfer id repeated: transfer {first} has it", {"first": seen}
                )
                repeats.append({"type": problem, "loc": (n, "transfer_id"), "input": t.transfer_id})
        if repeats:
            raise ValidationError.from_exception_data(cls.__name__, repeats)
        return transfers


class Response(BaseModel):
    """An institution's answer. `response_id` is chosen by the institution; a repeat is a no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    response_id: uuid.UUID
    instruction_id: uuid.UUID
    institution_id: InstitutionId
    outcome: Outcome
    held_amount: Held | None = Field(
        None,
        description="executed or partially executed: a stop-payment or freeze, the amount held (more than 0);"
        " a release or return, the amount released or returned (in part: more than 0, less than instructed)",
    )
    reason: str | None = Field(None, max_length=1000, description="rejected or partially executed: why")
    query_result: QueryResult | None = Field(None, description="an executed query's answer")
    responded_at: Instant | None = Field(
        None,
        description="when the institution answered; left out, when Stopline received the answer (on Kafka,"
        " the record's timestamp)",
    )
    schema_version: Literal[1] = 1


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    escalation_id: str = Field(description="`<instruction id>:<stage>`, unique")
    instruction_id: uuid.UUID
    case_id: uuid.UUID
    unit: str
    institution_id: InstitutionId
    kind: Kind
    # delivery: the instruction reached its institution on no channel; notice_*: a notice did not (the
    # institution may still hold money Stopline counts as released).
    stage: Literal["acknowledgement", "execution", "delivery", "notice_expired", "notice_cancelled"]
    due_at: AwareDatetime | None
    detected_at: AwareDatetime
    schema_version: Literal[1] = 1


class RefusedRecord(BaseModel):
    """Where a refused answer was read: its record on the institution's answer topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    partition: int
    offset: int


class Refusal(BaseModel):
    """Why an answer was refused: the `error` object the HTTP route answers with (its 4xx body)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="as the HTTP error's: invalid_input, not_found, conflict, forbidden")
    message: str
    details: list[dict[str, str]] | dict[str, str] | None = Field(
        None, description="as the HTTP error's: for invalid input, each problem's `field` and `reason`"
    )


class AnswerRefused(BaseModel):
    """An answer the institution produced to `instruction-responses.<id>` that was refused: nothing of it
    was applied. Sent once per refused record, on the channels the institution receives instructions on;
    an unreadable record names no answer, only where it was read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str = Field(description="idempotency key: `refused:` and a digest of the refused record")
    type: Literal["answer_refused"]
    institution_id: InstitutionId
    response_id: uuid.UUID | None = Field(None, description="the refused answer's, when it could be read")
    instruction_id: uuid.UUID | None = Field(None, description="the instruction the answer named, if any")
    error: Refusal
    record: RefusedRecord
    refused_at: AwareDatetime
    schema_version: Literal[1] = 1


# Everything an institution reads on `instructions.<id>` (and its webhook receives), told apart by `type`.
ForInstitution = Annotated[InstructionMessage | AnswerRefused, Field(discriminator="type")]

instruction_adapter: TypeAdapter[InstructionMessage] = TypeAdapter(InstructionMessage)
for_institution_adapter: TypeAdapter[InstructionMessage | AnswerRefused] = TypeAdapter(ForInstitution)
response_adapter: TypeAdapter[Response] = TypeAdapter(Response)
escalation_adapter: TypeAdapter[Escalation] = TypeAdapter(Escalation)
