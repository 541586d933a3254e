"""API shapes of the blocklist."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool
from pydantic_core import PydanticCustomError

from streams.schemas.blocklist import AccountChange, BlocklistChange
from streams.schemas.events import Account, InstitutionId, NonBlank, Phone


def _printable(value: str) -> str:
    if not value.isprintable():
        raise PydanticCustomError(
            "not_printable", "printable text: no control or format character (a line break, a bidi override)"
        )
    return value


# Published to every telecom and bank with the number or account it labels: one line of plain text, so
# nothing in it can reorder or hide what a reader's screen shows beside it.
Category = Annotated[NonBlank, Field(max_length=40), AfterValidator(_printable)]


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: Phone
    category: Category = "fraud"
    note: NonBlank = Field(max_length=2000, description="what the operator saw")
    request_id: uuid.UUID | None = Field(
        None,
        description="your idempotency key: the same report sent again (a retry after a timeout) counts"
        " once and is answered with the first one's receipt",
    )


class ReportReceipt(BaseModel):
    """A telecom's report, received. Nothing of the entry it joined (its status, reason, officers): that is
    police-internal, and would tell a telecom whether a number is under review."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="the report's id, to quote when asking about it")
    received_at: datetime = Field(validation_alias="at")


class ProposalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: Phone
    category: Category
    reason: NonBlank = Field(max_length=2000)
    case_id: uuid.UUID | None = Field(None, description="the confirmed case the number comes from")


class AccountProposalIn(BaseModel):
    """A supervisor lists an account as a mule account (a second officer still reviews it)."""

    model_config = ConfigDict(extra="forbid")

    institution: InstitutionId
    account: Account
    reason: NonBlank = Field(max_length=2000)
    case_id: uuid.UUID | None = Field(None, description="the case the account comes from, if any")


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    note: str | None = Field(None, max_length=2000)


class RenewalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: NonBlank = Field(max_length=2000, description="why it must stay listed: still in use")


class RenewalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    entry_id: uuid.UUID
    status: Literal["pending", "approved", "rejected"]
    reason: str
    proposed_by: str
    proposed_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str | None


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement: NonBlank = Field(max_length=4000, description="the number holder's statement")


class AppealDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uphold: StrictBool
    note: NonBlank = Field(max_length=2000)


class EntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: Literal["number", "account"]
    number: str | None
    institution: str | None
    account: str | None
    status: str
    source: str
    category: str
    reason: str
    case_id: uuid.UUID | None
    reports: int
    proposed_by: str
    proposed_at: datetime
    reviewed_by: str | None
    listed_at: datetime | None
    renewed_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    version: int | None


class EntryPage(BaseModel):
    items: list[EntryRead]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class AppealRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    entry_id: uuid.UUID
    status: str
    filed_by: str
    decided_by: str | None
    decision_note: str | None


class SyncPage(BaseModel):
    """`since=0` gives a snapshot of the active list, which replaces the reader's list (it carries no
    expiries or removals); `since=N` every change after version N (listings, expiries, removals). Call
    again with `since=version` while `more` is true."""

    version: int
    more: bool
    changes: list[BlocklistChange]


class AccountSyncPage(BaseModel):
    """The mule accounts, for banks and payment providers: as `SyncPage`, with accounts."""

    version: int
    more: bool
    changes: list[AccountChange]
