"""The fraud-number blocklist feed telecoms (and the scorer) read from the `blocklist` topic.

The topic is compacted and keyed by a hash of the number: the latest record per number is its
current state, so a reader that starts from the beginning holds the whole list. Removals and
expiries are ordinary records (status `removed` / `expired`), not tombstones, so a reader that was
away still learns a number left the list; `version` orders changes across numbers and matches the
version of the HTTP sync API.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from streams.schemas.events import Phone

FeedStatus = Literal["active", "expired", "removed"]


class BlocklistChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entry_id: uuid.UUID
    number: Phone = Field(description="the fraud number to block (E.164)")
    status: FeedStatus = Field(description="active: block it; expired / removed: stop blocking it")
    version: int = Field(ge=1, description="global, increasing; the same as the sync API's version")
    category: str = Field(description="why it is listed, e.g. impersonation")
    listed_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = Field(None, description="blocking ends at this time at the latest")
    changed_at: AwareDatetime
    schema_version: Literal[1] = 1


change_adapter: TypeAdapter[BlocklistChange] = TypeAdapter(BlocklistChange)


def number_key(number: str) -> bytes:
    """Compaction key: stable per number, not the number itself (no phone numbers in broker indexes)."""
    return b"n:" + hashlib.blake2b(number.encode(), digest_size=12).hexdigest().encode()
