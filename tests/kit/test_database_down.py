"""PostgreSQL out of reach: every API answers 503 with Retry-After (retryable), never a 500."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.blocklist.settings import BlocklistSettings
from services.coordination.settings import CoordinationSettings
from services.ingest.settings import IngestSettings
from services.notifier.settings import NotifierSettings
from tests import factories as f
from tests.conftest import Infra
from tests.metrics import sample

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on leaving: nothing listens there


def _ingest(common: Any) -> Any:
    from services.ingest.app import build

    return build(common, IngestSettings(intake=False))


def _coordination(common: Any) -> Any:
    from services.coordination.app import build

    return build(common, CoordinationSettings(consume=False, relay=False, scheduler=False))


def _notifier(common: Any) -> Any:
    from services.notifier.app import build

    return build(common, NotifierSettings(consume=False))


def _blocklist(common: Any) -> Any:
    from services.blocklist.app import build

    return build(common, BlocklistSettings(background=False))


CASES: list[tuple[Callable[[Any], Any], str, str, dict[str, str]]] = [
    (_ingest, "POST", "/v1/events", {"Authorization": "Bearer slk_0123456789ab.secret"}),
    (_coordination, "GET", "/v1/alerts", f.officer()),
    (_notifier, "GET", "/v1/desk/tasks", f.officer()),
    (_blocklist, "GET", "/v1/blocklist/entries", f.officer()),
]


@pytest.mark.parametrize(("build", "method", "path", "headers"), CASES)
async def test_an_api_without_its_database_answers_503_with_retry_after(
    infra: Infra, build: Callable[[Any], Any], method: str, path: str, headers: dict[str, str]
):
    url = f"postgresql+asyncpg://stopline@127.0.0.1:{_closed_port()}/stopline"
    app = build(infra.common.model_copy(update={"database_url": url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=30) as client:
            body = (
                {"events": [f.call(f.phone(), start=f.minutes_ago(1), minutes=1)]}
                if method == "POST"
                else None
            )
            answer = await client.request(method, path, headers=headers, json=body)
            ready = await client.get("/health/ready")
            ready_gauge = await sample(client, "stopline_ready")
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    # Not ready, and the readiness gauge (what the alert rules read) says so.
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error")
    assert ready_gauge == 0
