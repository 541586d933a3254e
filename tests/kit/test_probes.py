"""The probes and /metrics answer HEAD, as load balancers and uptime checks send it (an outside trial got
405 from every service)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


async def test_the_probes_and_metrics_answer_head_as_their_get_without_a_body(ingest):
    for path in ("/health", "/health/ready", "/health/live", "/metrics"):
        got, head = await ingest.get(path), await ingest.head(path)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-type"] == got.headers["content-type"], path
    assert (await ingest.head("/v1/schemas")).status_code == 405  # a route answers what it declares


async def test_a_wrong_method_is_told_the_methods_the_path_takes(coord):
    # Coordination's routes come from included routers, which the first cut of `Allow` never looked into
    # (it answered an empty `Allow`).
    wrong = await coord.client.put("/v1/cases")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "GET, POST"
