"""A Kafka connection that the broker closed is a Kafka error, which aiokafka retries, on either event loop:
on uvloop (the services' loop) aiokafka alone raises RuntimeError there, which its consumers' group task
hands to the poller, ending the consumer (streams/uvloop_writes.py)."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.metadata import MetadataRequest

from streams.acls import ADMIN
from streams.connection import connection

pytestmark = pytest.mark.integration


def _request_on_a_closed_connection(loop: str, infra) -> BaseException | None:
    """What a request raises when the connection closed under the client just before it was written."""
    kafka = connection(infra.common, ADMIN)
    host, port = kafka.bootstrap.split(",")[0].rsplit(":", 1)
    options = {k: v for k, v in kafka.options().items() if k != "bootstrap_servers"}

    async def ask() -> BaseException | None:
        conn = await create_conn(host, int(port), request_timeout_ms=5_000, **options)
        try:
            # The broker went away: the loop has closed the transport, the client has not seen it yet.
            conn._writer.transport.abort()
            await asyncio.sleep(0)
            await conn.send(MetadataRequest([]))
        except BaseException as exc:  # noqa: BLE001 - what it raises is the finding
            return exc
        finally:
            conn.close()
        return None

    factory = uvicorn.Config(app="services.ingest.app:app", loop=loop).get_loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(ask())


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_connection_the_broker_closed_is_a_connection_error_on_either_loop(loop, infra):
    assert isinstance(_request_on_a_closed_connection(loop, infra), KafkaConnectionError)


def test_the_services_run_on_uvloop():
    """(The loop the test above must cover.)"""
    factory = uvicorn.Config(app="services.ingest.app:app").get_loop_factory()
    assert factory is not None and "uvloop" in type(factory()).__module__
