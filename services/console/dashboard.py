"""The dashboard: today's alerts, warnings delivered and answered, amounts stopped, frozen, returned
and lost, the median times from alert and from report to stop-payment, and each institution's
response times, drawn as charts (the same figures are Prometheus metrics of the coordination service
and the notifier)."""

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.console import charts, web
from services.console.api import ApiError
from services.console.session import User


def today_start() -> datetime:
    now = datetime.now(web.LOCAL)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/dashboard")
    async def page(request: Request, user: Annotated[User, Depends(web.officer)]) -> Response:
        c = web.console(request)
        since = today_start()
        figures = await c.coordination(user).get("/v1/dashboard", since=since.isoformat())
        try:
            warnings: dict[str, Any] | None = await c.notifier(user).get(
                "/v1/warnings/summary", since=since.isoformat()
            )
        except ApiError:
            warnings = None
        hours = [since + timedelta(hours=h) for h in range(24)]
        return web.render(
            request,
            "dashboard.html",
            user=user,
            figures=figures,
            warnings=warnings,
            since=since,
            charts=charts.dashboard(figures, warnings, hours),
        )

    return api
