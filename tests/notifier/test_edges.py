"""The edge rule on a route that takes no body: a body is still looked at, and bad ones are refused."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.integration


async def test_a_body_nested_thousands_deep_is_a_422_not_a_500(notifier):
    """A route that takes no body still has the body looked at by the edge rule (when it holds an escape):
    thousands of nested brackets were a RecursionError there, a 500 before the caller was authenticated."""
    body = '{"s": "\\u0041", "x": ' + "[" * 5_000 + "]" * 5_000 + "}"
    headers = {"Content-Type": "application/json"}  # (no credentials: refused before anything)
    r = await notifier.client.post(f"/v1/desk/tasks/{uuid.uuid4()}/take", content=body, headers=headers)
    assert r.status_code == 422 and [d["field"] for d in r.json()["error"]["details"]] == ["body"]
