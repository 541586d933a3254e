"""The blocklist service: its API, the Kafka feed publisher, the expiry job and the consumer of
coordination's fraud receivers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.blocklist.endpoints import router
from services.blocklist.expiry import Expiry
from services.blocklist.feed import Feed
from services.blocklist.receivers import build_runner
from services.blocklist.settings import BlocklistSettings
from services.institutions.auth import institution_dependency
from services.institutions.credentials import CredentialVerifier
from services.kit.auth import AuthSettings, TokenVerifier, officer_dependency
from services.kit.db import make_engine, make_sessionmaker, ping, unit_of_work
from services.kit.http import consumer_liveness, create_app, serve, task_health
from services.kit.settings import CommonSettings
from streams import acls
from streams.connection import connection
from streams.producer import START_WITHIN_S, Producer


def build(common: CommonSettings | None = None, settings: BlocklistSettings | None = None) -> FastAPI:
    common = common or CommonSettings()
    settings = settings or BlocklistSettings()
    common.check_production_secrets()
    engine = make_engine(common.database_url)
    sessions = make_sessionmaker(engine)
    producer = Producer(
        connection(common, acls.BLOCKLIST),
        client_id="stopline-blocklist",
        transactional_id=acls.feed_transactions(common.topic_prefix),
    )
    feed = Feed(sessions, producer, prefix=common.topic_prefix, poll_s=settings.publish_poll_s)
    expiry = Expiry(sessions, interval_s=settings.expiry_interval_s, on_change=feed.wake)
    receivers = build_runner(common, sessions)
    tasks: dict[str, asyncio.Task[None]] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.background:
            await producer.start(within_s=START_WITHIN_S)
            tasks["feed"] = asyncio.create_task(feed.run(), name="blocklist-feed")
            tasks["expiry"] = asyncio.create_task(expiry.run(), name="blocklist-expiry")
            tasks["receivers"] = asyncio.create_task(receivers.run(), name="blocklist-receivers")
        try:
            yield
        finally:
            feed.stop()
            expiry.stop()
            receivers.stop()
            if tasks:
                await asyncio.wait(tasks.values(), timeout=15)
                await producer.stop()
            await engine.dispose()

    async def health() -> dict[str, Any]:
        return {"database": await ping(engine), **task_health(tasks)}

    async def session_dep() -> AsyncIterator[AsyncSession]:
        # The unit of work is the route (scope="function" in the routers): it commits before the answer
        # is sent, so a 2xx means the change is durable; then the feed is told to publish at once.
        async with unit_of_work(sessions) as session:
            yield session
        feed.wake()

    app = create_app(
        title="Stopline blocklist",
        health=health,
        liveness=lambda: task_health(tasks) | consumer_liveness({"receivers": receivers}),
        lifespan=lifespan,
    )
    officer = officer_dependency(TokenVerifier(AuthSettings(), environment=common.environment))
    app.include_router(
        router(session_dep, officer, institution_dependency(CredentialVerifier(sessions)), settings)
    )
    app.state.expiry = expiry
    app.state.feed = feed
    return app


def main() -> None:
    serve(build, BlocklistSettings(), service="blocklist")
