"""The dashboard's charts, computed on the server as bars for `dashboard.html` to draw in SVG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.console.web import LOCAL, parse_time, span


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    share: float  # of the chart's largest value, 0..1
    text: str  # the value as shown


def bars(pairs: list[tuple[str, float, str]]) -> list[Bar]:
    top = max((v for _, v, _ in pairs), default=0.0) or 1.0
    return [Bar(label, value, value / top, text) for label, value, text in pairs]


def dashboard(
    figures: dict[str, Any], warnings: dict[str, Any] | None, hours: list[datetime]
) -> dict[str, list[Bar]]:
    counts = {parse_time(h["hour"]): h["count"] for h in figures["alerts"]["by_hour"]}
    by_hour = []
    for hour in hours:
        n = next((c for at, c in counts.items() if at is not None and at.astimezone(LOCAL) == hour), 0)
        by_hour.append((f"{hour:%H}", float(n), str(n)))
    amounts = figures["amounts"]
    money = [
        (k, float(Decimal(str(amounts[k]))), f"¥{Decimal(str(amounts[k])):,.0f}")
        for k in ("lost", "stopped", "frozen", "returned", "outstanding")
    ]
    institutions = [
        (i["institution_id"], float(i["median_first_answer_s"] or 0), span(i["median_first_answer_s"]))
        for i in figures["institutions"]
    ]
    executions = [
        (i["institution_id"], float(i["median_execution_s"] or 0), span(i["median_execution_s"]))
        for i in figures["institutions"]
    ]
    warned = []
    if warnings is not None:
        warned = [
            (k, float(warnings[k]), str(warnings[k]))
            for k in ("warned", "delivered", "answered", "safe", "defrauded")
        ]
    return {
        "by_hour": bars(by_hour),
        "money": bars(money),
        "first_answer": bars(institutions),
        "execution": bars(executions),
        "warnings": bars(warned),
        "typology": bars(
            [(t, float(n), str(n)) for t, n in sorted(figures["alerts"]["by_typology"].items())]
        ),
    }
