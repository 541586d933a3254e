"""The blocklist feeds: fraud numbers on the `blocklist` topic (telecoms and the scorer read it), and
mule accounts, confirmed as fraud receivers, on `blocklist.accounts` (banks, payment providers and the
scorer read it). Coordination tells the blocklist which accounts received victims' money on
`fraud-receivers`.

Each topic is compacted and keyed by a hash of its subject: the latest record per number (or account)
is its current state, so a reader that starts from the beginning holds the whole list. Removals and
expiries are ordinary records (status `removed` / `expired`), not tombstones, so a reader that was
away still learns a subject left the list; `version` orders changes across the list (one sequence for
both) and matches the version of the HTTP sync API.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from streams.schemas.events import Account, InstitutionId, Phone

FeedStatus = Literal["active", "expired", "removed"]


class _Change(BaseModel):
    """What every published change carries besides its subject."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry_id: uuid.UUID
    status: FeedStatus = Field(description="active: listed; expired / removed: no longer")
    version: int = Field(ge=1, description="global, increasing; the same as the sync API's version")
    category: str = Field(description="why it is listed, e.g. impersonation, mule")
    listed_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = Field(None, description="listed until this time at the latest")
    changed_at: AwareDatetime
    schema_version: Literal[1] = 1


class BlocklistChange(_Change):
    """A fraud number's state on the list: telecoms block it while it is active."""

    number: Phone = Field(description="the fraud number to block (E.164)")


change_adapter: TypeAdapter[BlocklistChange] = TypeAdapter(BlocklistChange)


class AccountChange(_Change):
    """A mule account's state on the list: its holder received victims' money (a case confirmed as
    fraud, a freeze executed on it, or a supervisor's listing), reviewed by a second officer."""

    institution: InstitutionId = Field(description="the bank or payment provider holding the account")
    account: Account


account_change_adapter: TypeAdapter[AccountChange] = TypeAdapter(AccountChange)


def number_key(number: str) -> bytes:
    """Compaction key: stable per number, not the number itself (no phone numbers in broker indexes)."""
    return b"n:" + hashlib.blake2b(number.encode(), digest_size=12).hexdigest().encode()


def account_key(institution: str, account: str) -> bytes:
    """Compaction key of an account: stable, not the account number itself."""
    return b"a:" + hashlib.blake2b(f"{institution}/{account}".encode(), digest_size=12).hexdigest().encode()


class FraudReceiver(BaseModel):
    """Coordination's word that an account received victims' money: a case about it was closed as
    confirmed fraud, or a freeze on it was executed. The blocklist makes it a proposal for review."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str = Field(
        max_length=80, description="idempotency key: the case or instruction it comes from"
    )
    source: Literal["case", "freeze"]
    institution: InstitutionId
    account: Account
    case_id: uuid.UUID
    case_number: str = Field(max_length=64)
    decided_by: str = Field(
        max_length=120, description="the officer who closed the case or issued the freeze"
    )
    role: str = Field(max_length=16, description="their role")
    unit: str = Field(max_length=120, description="their police unit")
    decided_at: AwareDatetime
    schema_version: Literal[1] = 1


receiver_adapter: TypeAdapter[FraudReceiver] = TypeAdapter(FraudReceiver)
