"""API shapes of the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    actor_role: str
    actor_unit: str
    action: str
    entity_type: str
    entity_id: str
    case_id: uuid.UUID | None
    legal_basis: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditRead]
    next_after_id: int | None


class VerdictRead(BaseModel):
    ok: bool
    checked: int = Field(description="rows verified, from the chain's first through `through_id`")
    head_hash: str
    first_bad_id: int | None
    reason: str | None
    through_id: int = Field(description="the last row that held (0: none)")
    whole_verified_at: datetime | None = Field(
        description="when the whole chain was last walked from its first row; the rows after the newest "
        "verification's end are verified on each call (null: none recorded, the whole chain walked now)"
    )
