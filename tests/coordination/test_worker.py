"""The coordination worker (services.coordination.worker) in a process of its own serves what the kit's
services serve: /metrics with the families of what it runs, /health/live, and /health/ready, which is not
ready while its responses consumer is kept out of its group, and is once it holds its partitions.

Each worker works on a database and topic prefix of its own: the session's coordination app (the `coord`
fixture) would otherwise relay the message queued here and join the worker's consumer group."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from deploy.local.scratch import scratch_site
from services.coordination.delivery.models import OutboxMessage
from services.coordination.delivery.signing import IDEMPOTENCY_KEY
from services.coordination.instructions import consumer
from services.kit.db import make_engine, make_sessionmaker, unit_of_work
from streams import topics
from tests.conftest import Infra
from tests.coordination.conftest import worker
from tests.kafka_tools import eventually, member_that_never_rejoins, new_topic, read_topic
from tests.metrics import sample

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def _own_site(infra: Infra) -> AsyncIterator[Infra]:
    """A migrated database and a topic prefix of the test's own (under the session's); removed afterwards."""
    name = f"stopline_worker_{uuid.uuid4().hex[:8]}"
    async with scratch_site(infra.common, database=name, prefix=f"{infra.prefix}{name[-8:]}-") as common:
        yield Infra(common, common.database_url, common.topic_prefix, infra.kafka)


async def test_the_worker_is_ready_once_its_responses_consumer_holds_its_partitions(infra):
    async with _own_site(infra) as site:
        answers = topics.responses_from("bank-worker")
        topic = await new_topic(site, topics.name(answers, site.prefix), answers.partitions)
        group = f"{site.prefix}{consumer.GROUP}"
        # A member of the group that holds up the rebalance the worker's consumer starts by joining.
        async with (
            member_that_never_rejoins(site, topic, group) as holdout,
            worker(site.database_url, site.prefix) as started,
        ):
            assert (await started.client.get("/health/live")).status_code == 200
            await asyncio.wait_for(holdout.revoking.wait(), 30)  # the worker's consumer asked to join

            kept_out = await started.client.get("/health/ready")
            assert kept_out.status_code == 503, kept_out.text
            checks = kept_out.json()["checks"]
            assert checks.pop("responses_consumer partitions").startswith("error: not in its consumer group")
            assert set(checks) >= {"database", "kafka", "relay", "responses_consumer", "audit_check"}
            assert set(checks.values()) == {"ok"}
            assert await sample(started.client, "stopline_ready") == 0

            holdout.rejoin.set()

            async def ready() -> bool:
                return (await started.client.get("/health/ready")).status_code == 200

            await eventually(ready, timeout_s=30)
            assert await sample(started.client, "stopline_ready") == 1
            assert await sample(started.client, "stopline_consumer_assignments_total", group=group) >= 1


async def test_the_worker_serves_the_metrics_of_its_relay_and_scheduler(infra):
    async with _own_site(infra) as site:
        engine = make_engine(site.database_url, pool_size=1)
        began = time.time()
        try:
            async with worker(site.database_url, site.prefix) as started:
                metrics = started.client
                # The scheduler's audit verification runs once at its start.
                audited = await eventually(
                    lambda: sample(metrics, "stopline_audit_verified_timestamp_seconds"), timeout_s=30
                )
                assert audited >= began
                assert await sample(metrics, "stopline_audit_chain_ok") == 1
                assert await sample(metrics, "stopline_outbox_delivered_total", channel="kafka") == 0

                instructions = topics.name(topics.instructions_for("bank-worker"), site.prefix)
                message_id = f"notice-{uuid.uuid4().hex}"
                async with unit_of_work(make_sessionmaker(engine)) as session:
                    session.add(
                        OutboxMessage(
                            message_id=message_id,
                            institution_id="bank-worker",
                            channel="kafka",
                            topic=instructions,
                            key=message_id,
                            payload={"type": "notice"},
                        )
                    )

                async def delivered() -> bool:
                    return await sample(metrics, "stopline_outbox_delivered_total", channel="kafka") == 1

                await eventually(delivered, timeout_s=30)
                records = await read_topic(site.kafka, instructions)  # to its end: the message is committed
                assert [dict(r.headers)[IDEMPOTENCY_KEY] for r in records] == [message_id.encode()]
        finally:
            await engine.dispose()
