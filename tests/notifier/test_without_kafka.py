"""Citizens' answer links, the phone desk and the SMS delivery worker need only PostgreSQL: with Kafka
unreachable the notifier starts at once and answers; only its alerts consumer (and the producer of its
dead letters) waits for Kafka."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.kit.settings import CommonSettings
from services.notifier.app import build
from services.notifier.settings import NotifierSettings
from tests import factories as f

pytestmark = pytest.mark.integration


async def test_the_notifier_starts_and_answers_while_kafka_is_unreachable(unreachable_kafka: CommonSettings):
    app = build(unreachable_kafka, NotifierSettings())
    async with asyncio.timeout(20):  # the producer's start used to hold the app for 60 s, then fail it
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
                live = await client.get("/health/live")
                desk = await client.get("/v1/desk/tasks", headers=f.officer())
                link = await client.post("/v1/answers/" + "x" * 32, json={"answer": "safe"})
                ready = await client.get("/health/ready")
    assert live.status_code == 200, live.text
    assert desk.status_code == 200, desk.text
    assert link.status_code == 404, link.text  # looked up in the database: no such warning
    assert ready.json()["checks"]["alerts_consumer partitions"].startswith("error")  # it waits for Kafka
