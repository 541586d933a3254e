"""The dashboard figures of a period, for one unit (its cases and instructions) or for all."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.dashboard import repository
from services.coordination.dashboard.schemas import (
    AlertFigures,
    Amounts,
    Dashboard,
    HourCount,
    InstitutionTimes,
    Median,
)

ZERO = Decimal("0.00")


async def figures(session: AsyncSession, *, unit: str | None, since: datetime, until: datetime) -> Dashboard:
    alerts = await repository.alert_counts(session, since=since, until=until)
    money = await repository.amounts(session, unit=unit, since=since, until=until)
    stopped, frozen, returned = (money.get(k, ZERO) for k in ("stop_payment", "freeze", "return_funds"))
    from_alert = await repository.median_to_stop_payment(
        session, unit=unit, since=since, until=until, source="alert"
    )
    from_report = await repository.median_to_stop_payment(
        session, unit=unit, since=since, until=until, source="report"
    )
    return Dashboard(
        since=since,
        until=until,
        alerts=AlertFigures(
            total=sum(alerts["by_typology"].values()),
            by_typology=alerts["by_typology"],
            by_status=alerts["by_status"],
            by_hour=[HourCount(hour=h, count=n) for h, n in alerts["by_hour"]],
        ),
        amounts=Amounts(
            cases=money["cases"],
            lost=money["lost"],
            stopped=stopped,
            frozen=frozen,
            returned=returned,
            outstanding=money["outstanding"],
        ),
        alert_to_stop_payment=Median(median_s=from_alert[0], count=from_alert[1]),
        report_to_stop_payment=Median(median_s=from_report[0], count=from_report[1]),
        institutions=[
            InstitutionTimes(**row)
            for row in await repository.institution_times(session, unit=unit, since=since, until=until)
        ],
    )
