"""API shapes of the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


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
    checked: int
    head_hash: str
    first_bad_id: int | None
    reason: str | None
