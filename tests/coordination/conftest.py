"""Fixtures of the coordination tests: the app in-process with short policy periods, and helpers that
open cases and create institutions with their delivery channels."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from deploy.local.common import free_port
from services.coordination.instructions.models import Instruction
from services.coordination.settings import CoordinationSettings
from services.institutions import delivery
from services.kit.db import unit_of_work
from tests import factories as f
from tests.conftest import Infra
from tests.kafka_tools import eventually

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


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    client: httpx.AsyncClient  # its /metrics and /health


@contextlib.asynccontextmanager
async def worker(database_url: str, prefix: str, **settings: str) -> AsyncIterator[Worker]:
    """`services.coordination.worker` in a process of its own on a free port, its environment `settings`
    added; yielded once it serves (its start-up done), then stopped with SIGTERM: it must end by itself
    within the chart's grace, by that signal (killed and failed otherwise)."""
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": database_url,
        "STOPLINE_TOPIC_PREFIX": prefix,
        "STOPLINE_COORDINATION_WORKER_PORT": str(port),
        "STOPLINE_LOG_LEVEL": "WARNING",
        **settings,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.coordination.worker", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            running = Worker(process, client)

            async def serving() -> bool:
                assert process.returncode is None, "the worker exited"
                try:
                    return (await client.get("/health/live")).status_code == 200
                except httpx.ConnectError:  # not serving yet: its port refuses connections
                    return False

            await eventually(serving, timeout_s=60, every_s=0.2)
            yield running
    finally:
        stopped_by_itself = await _terminate(process)
    # (Not in `finally`: a failure of the test itself is not replaced by this one.)
    assert stopped_by_itself, f"the worker did not end within {STOP_GRACE_S} s of SIGTERM; killed"
    assert process.returncode == -signal.SIGTERM, f"the worker exited with status {process.returncode}"


STOP_GRACE_S = 45  # the chart's terminationGracePeriodSeconds, after which Kubernetes kills a pod


async def _terminate(process: asyncio.subprocess.Process) -> bool:
    """SIGTERM, then wait for the process to end; whether it did within the grace (else it is killed)."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_GRACE_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        return False
    return True


@pytest.fixture(scope="module")
async def relays_paused(coord: App, coordination: httpx.AsyncClient) -> AsyncIterator[None]:
    """The relays of the session's apps wait while the module's tests run (theirs, or none)."""
    lead_app = coordination._transport.app  # type: ignore[attr-defined]  # the tests/conftest.py app
    relays = [coord.app.state.relay, lead_app.state.relay]
    for relay in relays:
        await relay.stop()
    yield
    for relay in relays:
        await relay.start()


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
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *destinations: tuple[str, str, str],
    amount_lost: str = "50000.00",
) -> str:
    body = case_body(*destinations, amount_lost=amount_lost)
    response = await client.post("/v1/cases", json=body, headers=headers)
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


async def stop_issued(
    app: App, sessions: async_sessionmaker[AsyncSession], op: dict[str, str], amount: str, **bank_options: Any
) -> tuple[str, dict[str, str], str, dict[str, Any]]:
    """A bank (`bank`'s options: its channels), a case and a stop-payment of `amount` issued to it:
    (institution, its key, case, stop)."""
    inst, key, _ = await bank(sessions, **bank_options)
    account = f.account("MULE")
    case_id = await open_case(app.client, op, (inst, account, amount))
    stop = await issue(
        app.client, op, case_id, kind="stop_payment", institution_id=inst, account=account, amount=amount
    )
    return inst, key, case_id, stop


async def stop_in_force(
    coord: App, sessions: async_sessionmaker[AsyncSession], op: dict[str, str]
) -> tuple[dict[str, str], str, dict[str, Any]]:
    """A bank's key, a case, and a stop-payment of 1,200 CNY the bank executed."""
    _, key, case_id, stop = await stop_issued(coord, sessions, op, "1200.00")
    assert (
        await respond(coord.client, key, stop["id"], "executed", held_amount="1200.00")
    ).status_code == 200
    return key, case_id, stop


async def lapse_now(
    app: App, sessions: async_sessionmaker[AsyncSession], op: dict[str, str], hold: dict[str, Any]
) -> datetime:
    """The hold's period passes: rather than waiting for it, its end is moved to now; returns when the
    app's expiry job has lapsed it, with that end."""
    end = datetime.now(UTC)
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(Instruction).where(Instruction.id == uuid.UUID(hold["id"])).values(expires_at=end)
        )

    async def lapsed() -> bool:
        answer = await app.client.get(f"/v1/instructions/{hold['id']}", headers=op)
        return bool(answer.json()["status"] == "expired")

    await eventually(lapsed, timeout_s=6)
    return end


async def freeze_awaiting_approval(
    coord: App, sessions: async_sessionmaker[AsyncSession], by: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """A case and a freeze of 700 CNY `by` issued in it, waiting for a supervisor's approval."""
    inst, _, _ = await bank(sessions)
    account = f.account("MULE")
    case_id = await open_case(coord.client, by, (inst, account, "700.00"))
    hold = {"institution_id": inst, "account": account, "amount": "700.00", "document_number": "DOC-9"}
    return case_id, await issue(coord.client, by, case_id, kind="freeze", **hold)


async def waiting_on_a_lock(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether a statement reading cases waits on a lock (a case row another transaction holds)."""
    async with sessions() as s:
        query = text(
            "select count(*) from pg_stat_activity"
            " where wait_event_type = 'Lock' and query ilike '%from cases%'"
        )
        return int((await s.execute(query)).scalar_one()) > 0
