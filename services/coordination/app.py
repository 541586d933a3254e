"""The coordination service: the police- and institution-facing API, the alerts and responses consumers,
the outbox relay and the deadline scheduler (each can be switched off to run in its own process)."""

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.coordination.alerts import consumer as alerts_consumer
from services.coordination.alerts.endpoints import router as alerts_router
from services.coordination.audit.endpoints import router as audit_router
from services.coordination.background import Background
from services.coordination.cases.endpoints import router as cases_router
from services.coordination.dashboard.endpoints import router as dashboard_router
from services.coordination.deps import Deps
from services.coordination.incidents.endpoints import router as incidents_router
from services.coordination.instructions import consumer as responses_consumer
from services.coordination.instructions.endpoints import router as instructions_router
from services.coordination.instructions.institution_endpoints import router as institution_router
from services.coordination.instructions.service import Context
from services.coordination.officers.endpoints import router as officer_sessions_router
from services.coordination.settings import CoordinationSettings
from services.institutions.auth import institution_dependency
from services.institutions.credentials import CredentialVerifier
from services.institutions.endpoints import router as institution_sessions_router
from services.institutions.listing import router as institutions_router
from services.institutions.users import SessionVerifier
from services.kit.auth import AuthSettings, TokenVerifier, officer_dependency
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from services.kit.http import create_app, serve
from services.kit.settings import CommonSettings
from streams.consumer import ConsumerRunner

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False)
# A query's answer of the most transfers (streams.schemas.instructions.MAX_TRANSFERS) at their longest.
MAX_BODY_BYTES = 3_000_000


def build(common: CommonSettings | None = None, settings: CoordinationSettings | None = None) -> FastAPI:
    common = common or CommonSettings()
    settings = settings or CoordinationSettings()
    common.check_production_secrets(sealing=True)  # the relay signs webhooks with the sealed secrets
    engine = make_engine(common.database_url, pool_size=20)
    sessions = make_sessionmaker(engine)
    verifier = TokenVerifier(AuthSettings(), environment=common.environment)
    credentials = CredentialVerifier(sessions)
    ctx = Context(policy=settings, topic_prefix=common.topic_prefix, max_ahead_s=common.event_max_ahead_s)
    runners: dict[str, ConsumerRunner] = {}
    if settings.consume:
        runners["alerts_consumer"] = alerts_consumer.build_runner(common, sessions)
        runners["responses_consumer"] = responses_consumer.build_runner(common, sessions, ctx)
    background = Background(
        common,
        settings,
        sessions,
        engine,
        ctx,
        runners=runners,
        relay=settings.relay,
        scheduler=settings.scheduler,
    )

    async def session_dep() -> AsyncIterator[AsyncSession]:
        # The unit of work is the request: commit when the route returns, roll back when it raises.
        async with unit_of_work(sessions) as session:
            yield session

    institution_dep = institution_dependency(credentials, users=SessionVerifier(sessions))

    # Function scope: the commit happens before the response is sent, so a client never sees 2xx for
    # work that then fails to commit.
    async def committed_session(
        session: Annotated[AsyncSession, Depends(session_dep, scope="function")],
    ) -> AsyncSession:
        return session

    app = create_app(
        title="Stopline coordination API",
        health=background.readiness,
        liveness=background.liveness,
        lifespan=background.lifespan,
        max_body_bytes=MAX_BODY_BYTES,
    )
    officer = officer_dependency(verifier)
    app.include_router(
        institution_sessions_router(sessions, committed_session, ttl_s=settings.institution_session_ttl_s)
    )
    app.include_router(institutions_router(committed_session, officer))
    deps = Deps(session=committed_session, officer=officer, institution=institution_dep, ctx=ctx)
    for router in (
        alerts_router,
        incidents_router,
        dashboard_router,
        cases_router,
        instructions_router,
        institution_router,
        audit_router,
        officer_sessions_router,
    ):
        app.include_router(router(deps))
    return app


def main() -> None:
    serve(build, CoordinationSettings(), service="coordination")


if __name__ == "__main__":
    main()
