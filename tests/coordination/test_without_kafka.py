"""The coordination API needs only PostgreSQL to serve: with Kafka unreachable it starts at once and
answers; its consumers (and the producer of the alerts consumer's dead letters) wait for Kafka."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.coordination.app import build
from services.coordination.settings import CoordinationSettings
from services.kit.settings import CommonSettings
from tests import factories as f

pytestmark = pytest.mark.integration


async def test_coordination_starts_and_answers_while_kafka_is_unreachable(unreachable_kafka: CommonSettings):
    # Not the relay nor the scheduler: they publish to Kafka.
    app = build(unreachable_kafka, CoordinationSettings(relay=False, scheduler=False))
    async with asyncio.timeout(10):  # and it stops at once: its consumers had nothing in hand
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://coordination") as client:
                live = await client.get("/health/live")
                alerts = await client.get("/v1/alerts", headers=f.officer())
                ready = await client.get("/health/ready")
    assert live.status_code == 200, live.text
    assert alerts.status_code == 200, alerts.text
    # Not ready meanwhile: its readiness includes the consumers holding their partitions.
    assert ready.status_code == 503
    assert ready.json()["checks"]["alerts_consumer partitions"].startswith("error")  # it waits for Kafka
