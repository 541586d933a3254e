"""Fixtures of the coordination tests: the app in-process with short policy periods, and helpers that
open cases and create institutions with their delivery channels."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.coordination.settings import CoordinationSettings
from services.institutions import delivery
from services.kit.db import unit_of_work
from tests import factories as f
from tests.conftest import Infra

FAST: dict[str, Any] = {
    "scheduler_interval_s": 0.2,
    "relay_poll_s": 0.5,
    "webhook_backoff_s": 0.2,
    "webhook_backoff_max_s": 1.0,
    "webhook_timeout_s": 2.0,
}
_numbers = itertools.count(1)


@dataclass
class App:
    client: httpx.AsyncClient
    app: FastAPI
    settings: CoordinationSettings


@contextlib.asynccontextmanager
async def running(infra: Infra, **overrides: Any) -> AsyncIterator[App]:
    """A coordination app with its lifespan (relay, scheduler, consumers as the settings say)."""
    from services.coordination.app import build

    settings = CoordinationSettings(**{**FAST, **overrides})
    app = build(infra.common, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://coordination", timeout=30
        ) as client:
            yield App(client, app, settings)


async def bank(
    sessions: async_sessionmaker[AsyncSession],
    *,
    kind: str = "bank",
    kafka: bool = True,
    webhook_url: str | None = None,
) -> tuple[str, dict[str, str], str | None]:
    """An institution with its API-key headers and (when it has a webhook) its signing secret."""
    ident, headers = await f.institution(sessions, kind)
    secret = None
    if webhook_url is not None or not kafka:
        async with unit_of_work(sessions) as session:
            secret = await delivery.configure(
                session, institution_id=ident, kafka=kafka, webhook_url=webhook_url
            )
    return ident, headers, secret


def case_body(
    *destinations: tuple[str, str, str], amount_lost: str = "50000.00", **extra: Any
) -> dict[str, Any]:
    return {
        "case_number": f"CJ-{f.unique('case')}-{next(_numbers)}",
        "title": "impersonation scam",
        "source": "report",
        "victim": {
            "name": "Victim",
            "phone": f.phone(),
            "institution_id": "victim-bank",
            "account": f.account("V"),
        },
        "amount_lost": amount_lost,
        "lost_at": f.iso(f.minutes_ago(30)),
        "destinations": [
            {"institution_id": inst, "account": acc, "amount": amt, "at": f.iso(f.minutes_ago(25))}
            for inst, acc, amt in destinations
        ],
        **extra,
    }


async def open_case(
    client: httpx.AsyncClient, headers: dict[str, str], *destinations: tuple[str, str, str]
) -> str:
    response = await client.post("/v1/cases", json=case_body(*destinations), headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def issue(
    client: httpx.AsyncClient, headers: dict[str, str], case_id: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(f"/v1/cases/{case_id}/instructions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def respond(
    client: httpx.AsyncClient, headers: dict[str, str], instruction_id: str, outcome: str, **body: Any
) -> httpx.Response:
    payload = {"response_id": str(uuid.uuid4()), "outcome": outcome, **body}
    return await client.post(
        f"/v1/institution/instructions/{instruction_id}/responses", json=payload, headers=headers
    )
