"""The coordination service: the police-facing API and the consumer that stores alerts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts import consumer as alerts_consumer
from services.coordination.alerts.endpoints import router as alerts_router
from services.coordination.settings import CoordinationSettings
from services.kit.auth import AuthSettings, TokenVerifier, officer_dependency
from services.kit.db import make_engine, make_sessionmaker, ping
from services.kit.http import create_app
from services.kit.settings import CommonSettings

log = logging.getLogger(__name__)


def build(common: CommonSettings | None = None, settings: CoordinationSettings | None = None) -> FastAPI:
    common = common or CommonSettings()
    settings = settings or CoordinationSettings()
    common.check_production_secrets()
    engine = make_engine(common.database_url)
    sessions = make_sessionmaker(engine)
    verifier = TokenVerifier(AuthSettings(), environment=common.environment)
    runner = alerts_consumer.build_runner(common, sessions) if settings.consume else None
    consuming: list[asyncio.Task[None]] = []

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if runner is not None:
            consuming.append(asyncio.create_task(runner.run(), name="alerts-consumer"))
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
                await asyncio.wait(consuming, timeout=15)
            await engine.dispose()

    async def health() -> dict[str, Any]:
        checks = {"database": await ping(engine)}
        if consuming:
            task = consuming[0]
            checks["alerts_consumer"] = "ok" if not task.done() else "error: stopped"
        return checks

    async def session_dep() -> AsyncIterator[AsyncSession]:
        # The unit of work is the request: commit when the route returns, roll back when it raises.
        async with sessions() as session, session.begin():
            yield session

    app = create_app(title="Stopline coordination API", health=health, lifespan=lifespan)
    app.include_router(alerts_router(session_dep, officer_dependency(verifier)))
    return app


def main() -> None:
    import uvicorn

    from services.kit.logging import configure_logging

    common = CommonSettings()
    settings = CoordinationSettings()
    configure_logging(service="coordination", level=common.log_level, pseudonym_key=common.pseudonym_key)
    uvicorn.run(
        build(common, settings), host=settings.host, port=settings.port, log_config=None, access_log=False
    )


if __name__ == "__main__":
    main()
