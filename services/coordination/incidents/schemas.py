"""API shapes of incidents."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.coordination.alerts.schemas import AlertRead

Kind = Literal["mule", "episode"]
QueueStatus = Literal["new", "triaged", "open", "dismissed", "escalated"]


class IncidentRead(BaseModel):
    """One mule account or one scam episode: its alerts, how many people paid into it, what is at risk."""

    id: str = Field(description="opaque and stable: the same alerts always make the same incident")
    kind: Kind
    institution: str | None = Field(description="mule incidents: the institution holding the account")
    account: str | None = Field(description="mule incidents: the account the victims paid into")
    typologies: list[str]
    alerts: int = Field(description="alerts in the incident that match the filters")
    victims: int = Field(description="distinct people who paid (victims' alerts)")
    new: int = Field(description="alerts nobody has triaged yet")
    open: int = Field(description="alerts new or triaged (not dismissed nor escalated)")
    max_score: float
    amount_at_risk: Decimal | None = Field(description="victims' payments; a lone mule alert: its inflow")
    recommended_actions: list[str]
    first_received_at: datetime
    last_received_at: datetime
    top: AlertRead = Field(description="the highest-scoring alert: its reasons stand for the incident")
    members: list[AlertRead] = Field(description="the alerts, highest score first (at most 50)")
    case_ids: list[uuid.UUID] = Field(description="cases of the caller's unit linked to these alerts")


class IncidentPage(BaseModel):
    items: list[IncidentRead]


class IncidentStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["triaged", "dismissed", "escalated"]
    note: str | None = Field(None, max_length=2000)


class IncidentStatusResult(BaseModel):
    changed: int = Field(description="alerts moved (each move recorded as for a single alert)")
    incident: IncidentRead = Field(description="the incident after the change")
