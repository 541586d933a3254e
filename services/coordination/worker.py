"""The coordination background worker in its own process: outbox relay, deadline scheduler (with its
periodic jobs: gauges, audit verification, outbox housekeeping) and the institution-responses consumer,
for when the API runs with them switched off
(`STOPLINE_COORDINATION_RELAY=false STOPLINE_COORDINATION_SCHEDULER=false`):

    python -m services.coordination.worker

It serves only `/metrics` and `/health` (services.kit.http), on `STOPLINE_COORDINATION_WORKER_PORT`
(8013; in a container probed and scraped on 8080, as the compose file and the chart do, give it 8080).
Several workers (and API processes) may run at once: rows are claimed with SKIP LOCKED and the consumer
group shares the partitions; workers on one host each need a port of their own (one on a port a serving
process holds exits with status 3 before it starts any work; of two started at once on one port, the later
to serve stops its work again and exits so). SIGTERM finishes the batch in hand, then ends the process
by that signal (uvicorn raises it again once it has stopped): status 143 in a shell, -15 to Python's
subprocess, which is a clean stop; any other status is a failure.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from services.coordination.background import Background
from services.coordination.instructions import consumer as responses_consumer
from services.coordination.instructions.service import Context
from services.coordination.settings import CoordinationSettings
from services.kit.db import make_engine, make_sessionmaker
from services.kit.http import create_app, serve
from services.kit.settings import CommonSettings


def build(common: CommonSettings, settings: CoordinationSettings) -> FastAPI:
    common.check_production_secrets(sealing=True)  # the relay signs webhooks with the sealed secrets
    engine = make_engine(common.database_url, pool_size=10)
    sessions = make_sessionmaker(engine)
    ctx = Context(policy=settings, topic_prefix=common.topic_prefix, max_ahead_s=common.event_max_ahead_s)
    runners = {"responses_consumer": responses_consumer.build_runner(common, sessions, ctx)}
    background = Background(
        common, settings, sessions, engine, ctx, runners=runners, relay=True, scheduler=True
    )
    relay = background.relay
    assert relay is not None

    async def health() -> dict[str, Any]:
        # What the API's readiness says of the same components, and Kafka: the relay is all this process
        # is for, and it publishes nothing while no Kafka node answers. (The API process still answers a
        # direct request then, but its readiness is false too: its consumers hold no partitions.)
        checks, kafka = await asyncio.gather(background.readiness(), relay.producer.ping())
        return {**checks, "kafka": kafka}

    return create_app(
        title="Stopline coordination worker",
        health=health,
        liveness=background.liveness,
        lifespan=background.lifespan,
    )


def main() -> None:
    settings = CoordinationSettings()
    # The worker's port in the place the kit's server reads a service's own (`port` is the API's).
    serve(build, settings.model_copy(update={"port": settings.worker_port}), service="coordination-worker")


if __name__ == "__main__":
    main()
