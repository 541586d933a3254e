"""The alert queue: incidents (one mule account or one scam episode each), live, filtered, triaged
with one key; an incident's page, from which its case is opened."""

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel

from services.console import web
from services.console.api import ApiError
from services.console.session import User
from streams.schemas.events import NonBlank

IncidentId = Annotated[str, Path(pattern="^[0-9a-f]{20}$")]
# The form sends every field, empty ones as "": empty means the default, anything else must be known (an
# address typed wrong is told, not shown as another queue).
Status = Literal["open", "new", "triaged", "dismissed", "escalated", "all", ""]
TypologyFilter = Literal["call_then_transfer", "mule_fan_in", "suspicious_payment", ""]
Window = Literal["1h", "24h", "7d", "30d", ""]
WINDOWS = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}
STATUSES = tuple(s for s in get_args(Status) if s)
TYPOLOGIES = tuple(t for t in get_args(TypologyFilter) if t)


def _score(value: str | None) -> str | None:
    """The filter form sends the field empty when no minimum is wanted; a number is passed on as read
    (" 0.5" and "5e-1" as "0.5")."""
    if not value:
        return value
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 1:
        raise ValueError("a score from 0 to 1")
    return f"{number:g}"


MinScore = Annotated[str | None, AfterValidator(_score)]


class QueueFilter(BaseModel):
    status: str = "open"
    typology: str = ""
    min_score: str = ""
    window: str = "24h"

    def params(self) -> dict[str, Any]:
        since = datetime.now(UTC) - timedelta(hours=WINDOWS[self.window])
        return {
            "status": None if self.status == "all" else self.status,
            "typology": self.typology or None,
            "min_score": self.min_score or None,
            "since": since.isoformat(),
            "limit": 100,
        }

    def query(self) -> str:
        return urlencode(self.model_dump())


def filters(
    status: Annotated[Status | None, Query()] = None,
    typology: Annotated[TypologyFilter | None, Query()] = None,
    min_score: Annotated[MinScore, Query(max_length=10)] = None,
    window: Annotated[Window | None, Query()] = None,
) -> QueueFilter:
    given = {"status": status, "typology": typology, "min_score": min_score, "window": window}
    return QueueFilter(**{name: value for name, value in given.items() if value})  # empty: the default


async def incidents(request: Request, user: User, where: QueueFilter) -> list[dict[str, Any]]:
    page = await web.console(request).coordination(user).get("/v1/incidents", **where.params())
    return list(page["items"])


def case_body(incident: dict[str, Any], *, case_number: str, title: str) -> dict[str, Any]:
    """A case opened from an incident: its victims' payments are where the money went (the tree's
    roots), the highest-scoring victim stands as the case's victim, and every alert is linked."""
    members = incident["members"]
    victims = [a for a in members if a["typology"] != "mule_fan_in"]
    first = victims[0] if victims else members[0]
    subject = first["subject"]
    destinations = [
        {
            "institution_id": a["subject"]["payee_institution"],
            "account": a["subject"]["payee_account"],
            "amount": a["amount_at_risk"],
            "at": a["event_time"],
        }
        for a in victims
        if a["subject"].get("payee_account") and a["subject"].get("payee_institution") and a["amount_at_risk"]
    ]
    if not destinations and incident.get("account") and incident.get("institution"):
        destinations = [
            {
                "institution_id": incident["institution"],
                "account": incident["account"],
                "amount": incident["amount_at_risk"] or "0.01",
                "at": first["event_time"],
            }
        ]
    lost = sum((Decimal(str(d["amount"])) for d in destinations), Decimal(0))
    return {
        "case_number": case_number,
        "title": title,
        "source": "alert",
        "alert_ids": [a["id"] for a in members],
        "victim": {
            k: v
            for k, v in {
                "phone": subject.get("phone"),
                "institution_id": subject.get("institution") if victims else None,
                "account": subject.get("account") if victims else None,
            }.items()
            if v
        },
        "amount_lost": f"{lost:.2f}" if lost > 0 else "0.01",
        "lost_at": min(a["event_time"] for a in members),
        "destinations": destinations[:100],
    }


def suggested_case_number() -> str:
    return f"CJ-{datetime.now(web.LOCAL):%Y%m%d}-{secrets.token_hex(2).upper()}"


def router() -> APIRouter:
    api = APIRouter(include_in_schema=False)
    Officer = Annotated[User, Depends(web.officer)]

    @api.get("/")
    async def queue(
        request: Request, user: Officer, where: Annotated[QueueFilter, Depends(filters)]
    ) -> Response:
        items = await incidents(request, user, where)
        return web.render(
            request,
            "queue.html",
            user=user,
            items=items,
            where=where,
            statuses=STATUSES,
            typologies=TYPOLOGIES,
            windows=WINDOWS,
            now=datetime.now(UTC),
        )

    @api.get("/incidents/{incident_id}")
    async def incident(request: Request, incident_id: IncidentId, user: Officer) -> Response:
        found = await web.console(request).coordination(user).get(f"/v1/incidents/{incident_id}")
        return web.render(
            request,
            "incident.html",
            user=user,
            incident=found,
            case_number=suggested_case_number(),
            now=datetime.now(UTC),
        )

    @api.post("/incidents/{incident_id}/status")
    async def triage(
        request: Request,
        incident_id: IncidentId,
        user: Officer,
        status: Annotated[str, Form(pattern="^(triaged|dismissed|escalated)$")],
        csrf: Annotated[str, Form(max_length=200)] = "",
        note: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        to = web.back(request, "/")
        try:
            web.check_csrf(user, csrf)
            await (
                web.console(request)
                .coordination(user)
                .post(f"/v1/incidents/{incident_id}/status", {"status": status, "note": note or None})
            )
        except ApiError as exc:
            return web.done(request, to=to, error=exc)
        return web.done(request, to=to, ok=f"done_{status}")

    @api.post("/incidents/{incident_id}/case")
    async def open_case(
        request: Request,
        incident_id: IncidentId,
        user: Officer,
        case_number: Annotated[NonBlank, Form(max_length=64)],
        title: Annotated[NonBlank, Form(max_length=200)],
        csrf: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        coordination = web.console(request).coordination(user)
        try:
            web.check_csrf(user, csrf)
            found = await coordination.get(f"/v1/incidents/{incident_id}")
            case = await coordination.post(
                "/v1/cases", case_body(found, case_number=case_number, title=title)
            )
        except ApiError as exc:
            return web.done(request, to=f"/incidents/{incident_id}", error=exc)
        to = f"/cases/{case['id']}"
        if found["open"]:
            try:
                await coordination.post(f"/v1/incidents/{incident_id}/status", {"status": "escalated"})
            except ApiError as exc:  # the case is open all the same: the officer goes on from it, told why
                return web.done(request, to=to, error=exc)
        return web.done(request, to=to, ok="case_opened")

    return api
