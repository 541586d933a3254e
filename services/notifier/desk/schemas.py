"""API shapes of the phone desk."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

Outcome = Literal["dissuaded", "reached_too_late", "not_reached"]


class TaskRead(BaseModel):
    id: uuid.UUID
    warning_id: uuid.UUID
    reason: str
    priority: float
    status: str
    phone: str = Field(description="whom to call: desk staff need the number")
    language: str
    typology: str
    amount_at_risk: Decimal | None
    answer: str | None
    taken_by: str | None
    outcome: str | None
    created_at: datetime


class TaskPage(BaseModel):
    items: list[TaskRead]


class Close(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    defrauded: StrictBool = Field(False, description="the person has been defrauded: open or update the case")
    note: str | None = Field(None, max_length=2000)
