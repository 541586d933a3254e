"""API shapes of the dashboard figures."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field


class HourCount(BaseModel):
    hour: datetime
    count: int


class AlertFigures(BaseModel):
    total: int
    by_typology: dict[str, int]
    by_status: dict[str, int]
    by_hour: list[HourCount]


class Amounts(BaseModel):
    """Of the cases opened in the period: what was reported lost and what is held or back."""

    cases: int
    lost: Decimal
    stopped: Decimal = Field(description="held now by stop-payments")
    frozen: Decimal = Field(description="held now by freezes")
    returned: Decimal = Field(description="returned to victims")
    outstanding: Decimal = Field(
        description="per case lost − stopped − frozen − returned, never below 0 (holds may keep other "
        "victims' money too), summed"
    )


class Median(BaseModel):
    median_s: float | None = Field(description="null when no case of the kind got a stop-payment")
    count: int = Field(description="cases measured")


class InstitutionTimes(BaseModel):
    institution_id: str
    instructions: int
    answered: int
    median_first_answer_s: float | None = Field(description="issued → the institution's first answer")
    median_execution_s: float | None = Field(description="issued → executed (or partially)")
    overdue: int = Field(description="past a deadline and not answered")


class Dashboard(BaseModel):
    since: datetime
    until: datetime
    alerts: AlertFigures
    amounts: Amounts
    alert_to_stop_payment: Median
    report_to_stop_payment: Median
    institutions: list[InstitutionTimes]
