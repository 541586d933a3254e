"""The dashboard's figures of the day, for every unit, as Prometheus gauges (refreshed by a job)."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination.dashboard import service
from services.coordination.dashboard.endpoints import midnight
from services.kit.periodic import PeriodicJob

ALERTS = Gauge("stopline_today_alerts", "alerts received since midnight (Beijing time)", ["typology"])
AMOUNT = Gauge(
    "stopline_today_amount_cny",
    "of cases opened today: lost, stopped, frozen, returned, outstanding",
    ["kind"],
)
TO_STOP = Gauge(
    "stopline_today_to_stop_payment_median_seconds",
    "median seconds to a case's first stop-payment, from its first alert or from the victim's report",
    ["source"],
)
ANSWER = Gauge(
    "stopline_today_institution_answer_median_seconds",
    "median seconds from issuing an instruction to the institution's first answer / execution",
    ["institution", "stage"],
)


class DashboardGauges(PeriodicJob):
    name = "dashboard gauges"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, interval_s: float) -> None:
        super().__init__(interval_s=interval_s)
        self.sessions = sessions

    async def once(self) -> None:
        async with self.sessions() as session:
            day = await service.figures(session, unit=None, since=midnight(), until=datetime.now(UTC))
        ALERTS.clear()
        for typology, count in day.alerts.by_typology.items():
            ALERTS.labels(typology).set(count)
        a = day.amounts
        for kind, value in (
            ("lost", a.lost),
            ("stopped", a.stopped),
            ("frozen", a.frozen),
            ("returned", a.returned),
            ("outstanding", a.outstanding),
        ):
            AMOUNT.labels(kind).set(float(value))
        for source, median in (("alert", day.alert_to_stop_payment), ("report", day.report_to_stop_payment)):
            TO_STOP.labels(source).set(median.median_s if median.median_s is not None else float("nan"))
        ANSWER.clear()
        for inst in day.institutions:
            if inst.median_first_answer_s is not None:
                ANSWER.labels(inst.institution_id, "first_answer").set(inst.median_first_answer_s)
            if inst.median_execution_s is not None:
                ANSWER.labels(inst.institution_id, "execution").set(inst.median_execution_s)
