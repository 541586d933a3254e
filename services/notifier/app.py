"""The notifier service: alerts consumer, delivery worker, escalation job, and its API (receipts,
answers, contacts, phone desk)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.institutions.auth import institution_dependency
from services.institutions.credentials import CredentialVerifier
from services.kit.auth import AuthSettings, TokenVerifier, officer_dependency
from services.kit.db import make_engine, make_sessionmaker, ping, unit_of_work
from services.kit.http import consumer_liveness, create_app, group_health, serve, task_health
from services.kit.settings import CommonSettings
from services.notifier.cases import CoordinationCases
from services.notifier.delivery.channels import Channels
from services.notifier.delivery.endpoints import router as receipts_router
from services.notifier.delivery.worker import DeliveryWorker
from services.notifier.desk.endpoints import router as desk_router
from services.notifier.escalation import Escalator
from services.notifier.settings import NotifierSettings
from services.notifier.warnings import consumer
from services.notifier.warnings.endpoints import router as citizens_router
from services.notifier.warnings.officer_endpoints import router as warnings_router
from services.notifier.warnings.service import CaseBridge

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False)


def build(
    common: CommonSettings | None = None,
    settings: NotifierSettings | None = None,
    *,
    bridge: CaseBridge | None = None,
) -> FastAPI:
    common = common or CommonSettings()
    settings = settings or NotifierSettings()
    common.check_production_secrets()
    settings.check_production_secrets(common.environment)
    engine = make_engine(common.database_url)
    sessions = make_sessionmaker(engine)
    sealer = settings.payload_sealer()
    bridge = bridge or CoordinationCases(unit=settings.case_unit)
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
    worker = DeliveryWorker(sessions, settings, Channels(settings, client), sealer)
    escalator = Escalator(sessions, settings)
    runner = (
        consumer.build_runner(common, settings, sessions, sealer, worker.wake, bridge)
        if settings.consume
        else None
    )
    tasks: dict[str, asyncio.Task[None]] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if runner is not None:
            tasks["delivery_worker"] = asyncio.create_task(worker.run(), name="delivery-worker")
            tasks["escalation"] = asyncio.create_task(escalator.run(), name="escalation")
            # Kafka is waited for in the consumer's task (its dead letters' producer too), not in the
            # lifespan: the answer links, the desk and the delivery worker need only PostgreSQL, and serve.
            tasks["alerts_consumer"] = asyncio.create_task(runner.run(), name="notifier-alerts")
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
                if not runner.started.is_set():
                    tasks["alerts_consumer"].cancel()  # still waiting for Kafka: nothing in hand
            worker.stop()
            escalator.stop()
            if tasks:
                await asyncio.wait(tasks.values(), timeout=15)
            await client.aclose()
            await engine.dispose()

    consumers = {"alerts_consumer": runner} if runner is not None else {}

    async def health() -> dict[str, Any]:
        return {"database": await ping(engine), **task_health(tasks), **group_health(consumers)}

    async def session_dep() -> AsyncIterator[AsyncSession]:
        # The unit of work is the route (scope="function" in the routers): it commits before the answer
        # is sent, so a 2xx means the change is durable.
        async with unit_of_work(sessions) as session:
            yield session

    app = create_app(
        title="Stopline notifier",
        health=health,
        liveness=lambda: task_health(tasks) | consumer_liveness(consumers),
        lifespan=lifespan,
    )
    officer = officer_dependency(TokenVerifier(AuthSettings(), environment=common.environment))
    institution = institution_dependency(CredentialVerifier(sessions))
    app.include_router(receipts_router(session_dep, settings))
    app.include_router(citizens_router(session_dep, institution, bridge))
    app.include_router(desk_router(session_dep, officer, bridge))
    app.include_router(warnings_router(session_dep, officer))
    app.state.worker = worker
    app.state.escalator = escalator
    app.state.sessions = sessions
    return app


def main() -> None:
    serve(build, NotifierSettings(), service="notifier")
