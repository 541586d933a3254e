"""API shapes of alerts."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["new", "triaged", "dismissed", "escalated"]


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    typology: str
    score: float
    status: Status
    reasons: list[str]
    recommended_actions: list[str]
    subject: dict[str, Any]
    triggering_event_ids: list[str]
    amount_at_risk: Decimal | None
    event_time: datetime
    created_at: datetime
    received_at: datetime
    scorer_version: str
    status_changed_at: datetime | None
    status_changed_by: str | None
    revision: int = Field(description="1 as raised; higher once later payments of the episode were merged in")
    incident_id: uuid.UUID | None = Field(description="alerts about the same collection account share it")
    payments: list[dict[str, Any]] = Field(description="the episode's money-outs: event_ref, amount, ...")
    scam_typology: str | None
    scam_typology_score: float | None
    updated_at: datetime | None = Field(description="when a later revision last changed the alert")


class StatusChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: Status
    to_status: Status
    actor: str
    actor_role: str
    actor_unit: str
    note: str | None
    at: datetime


class AlertDetail(AlertRead):
    history: list[StatusChangeRead]


class AlertPage(BaseModel):
    items: list[AlertRead]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    note: str | None = Field(None, max_length=2000)
